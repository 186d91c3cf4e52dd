'use strict';
/**
 * A local osls plugin: refuses a deploy, before CloudFormation starts, whose functions would fail at
 * cold start for want of a setting. serverless.yml takes these from the deploying shell
 * (`${env:DATABASE_URL_PARAMETER, ''}`), so a forgotten one used to deploy fine and fail on the first request.
 * Plain `serverless package` (CI, no settings at hand) is not checked: nothing ships from it.
 *
 * Settings are named by the environment variable the functions read. Secrets never travel in plain
 * text: a function gets the name of the SSM parameter that holds one (shared/secrets.ts), and a
 * template that would put a secret itself in a function's environment is refused. CommonJS, because
 * osls require()s plugins; scripts/deploy.ts applies the same check before it deploys the layer.
 */

const PARAMETER_NAME = {
  pattern: /^(?=.{2,1011}$)(?!\/(aws|ssm)(\/|$))(\/[\w.-]+){1,15}$/i,
  expected: 'an SSM parameter name such as /hubfolio/prod/database-url (a SecureString; README: Deploying)',
};

/** What a usable value looks like: the rules shared/config.ts applies at cold start. */
const REQUIRED_SETTINGS = {
  DATABASE_URL_PARAMETER: PARAMETER_NAME,
  MODEL_BUCKET: {
    pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    expected: 'a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)',
  },
};

/** Settings a deployment may leave out, checked when given; `with`: needed wherever that one is set. */
const OPTIONAL_SETTINGS = {
  THINGSBOARD_DEVICE_TOKEN_PARAMETER: { ...PARAMETER_NAME, with: 'THINGSBOARD_URL' },
};

/** Secrets, which a function reads from SSM and must never find in its environment. */
const PLAIN_SECRETS = ['DATABASE_URL', 'THINGSBOARD_DEVICE_TOKEN', 'THINGSBOARD_USERNAME', 'THINGSBOARD_PASSWORD'];

/** The environment variables of every Lambda function in a compiled CloudFormation template, by logical id. */
function templateEnvironments(template) {
  const environments = {};
  for (const [id, resource] of Object.entries(template.Resources ?? {})) {
    if (resource.Type === 'AWS::Lambda::Function') environments[id] = resource.Properties?.Environment?.Variables ?? {};
  }
  return environments;
}

/**
 * What is wrong with the required settings across these environments, one line per setting. Values
 * are never repeated (a database URL holds a password); CloudFormation intrinsics such as !Ref are
 * resolved by CloudFormation and not checked here.
 */
function settingProblems(environments) {
  const problems = [];
  const all = Object.values(environments);
  const literal = (value) => typeof value === 'string';
  for (const [name, rule] of Object.entries(REQUIRED_SETTINGS)) {
    const values = all.filter((variables) => name in variables).map((variables) => variables[name]);
    const literals = values.filter(literal);
    if (values.length === 0) problems.push(`${name} is not set for any function; expected ${rule.expected}`);
    else if (literals.includes('')) problems.push(`${name} is not set; expected ${rule.expected}`);
    else if (literals.some((value) => !rule.pattern.test(value))) problems.push(`${name}: expected ${rule.expected}`);
  }
  for (const [name, rule] of Object.entries(OPTIONAL_SETTINGS)) {
    const given = all.map((variables) => variables[name]).filter((value) => literal(value) && value !== '');
    const partner = all.some((variables) => literal(variables[rule.with]) && variables[rule.with] !== '');
    if (given.some((value) => !rule.pattern.test(value))) problems.push(`${name}: expected ${rule.expected}`);
    else if (partner && given.length === 0)
      problems.push(`${name} is not set, but ${rule.with} is; expected ${rule.expected}`);
  }
  const plain = PLAIN_SECRETS.filter((name) => all.some((variables) => name in variables));
  for (const name of plain)
    problems.push(`${name} must not be in a function's environment (a secret in plain text); give ${name}_PARAMETER`);
  return problems;
}

const refusal = (problems) =>
  `Refusing to deploy: ${problems.join('; ')}. Set ${problems.length > 1 ? 'them' : 'it'} in the environment of \`npm run deploy\` (README: Deploying).`;

class DeployCheck {
  constructor(serverless, options) {
    const check = (environments) => {
      const problems = settingProblems(environments);
      if (problems.length > 0) throw new serverless.classes.Error(refusal(problems));
    };
    this.hooks = {
      // Runs after the core's own before:deploy:deploy hooks, which package the service or load the
      // --package directory: the template checked is the one about to ship.
      'before:deploy:deploy': () =>
        check(templateEnvironments(serverless.service.provider.compiledCloudFormationTemplate)),
      // `deploy function` updates a function's configuration, environment included.
      'before:deploy:function:initialize': () => {
        const fn = serverless.service.getFunction(options.function);
        check({ [options.function]: { ...serverless.service.provider.environment, ...fn.environment } });
      },
    };
  }
}

module.exports = DeployCheck;
module.exports.settingProblems = settingProblems;
module.exports.templateEnvironments = templateEnvironments;
module.exports.refusal = refusal;
