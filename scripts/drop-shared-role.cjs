'use strict';
/**
 * A local osls plugin. serverless-iam-roles-per-function builds each function's role from osls's
 * shared one (IamRoleLambdaExecution) and leaves that in the template: unused, yet allowed every
 * function's logs and both queues' event-source actions. Once nothing refers to it, it goes, so
 * the stack holds no role beyond the functions' own (and osls's custom-resource role).
 */
class DropSharedRole {
  constructor(serverless) {
    this.hooks = {
      // Listed after serverless-iam-roles-per-function in serverless.yml, so this runs after it.
      'before:package:finalize': () => {
        const { Resources } = serverless.service.provider.compiledCloudFormationTemplate;
        const id = serverless.getProvider('aws').naming.getRoleLogicalId();
        const { [id]: shared, ...others } = Resources;
        if (shared && !JSON.stringify(others).includes(`"${id}"`)) delete Resources[id];
      },
    };
  }
}

module.exports = DropSharedRole;
