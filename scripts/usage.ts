/**
 * The command line of every `npm run` script of ours: node:util's parseArgs, plus `--help` (and
 * `-h`), which prints the usage and exits before the script does anything, and a usage error
 * (exit 2) for an option the script does not know.
 */
import { parseArgs } from 'node:util';

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  description: string;
  /** The value's placeholder in the usage, e.g. VERSION. */
  valueName?: string;
}

export interface ScriptSpec<O extends Record<string, OptionSpec>> {
  /** How it is run, e.g. `npm run dlq:redrive`. */
  command: string;
  /** What it does, in a sentence or two. */
  description: string;
  options?: O;
  /** The environment variables it reads, and what for. */
  environment?: Record<string, string>;
}

type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string;
};

function usageText(spec: ScriptSpec<Record<string, OptionSpec>>): string {
  const options = Object.entries(spec.options ?? {}).map(([name, option]) => {
    const flag = `${option.short ? `-${option.short}, ` : ''}--${name}${option.type === 'string' ? ` ${option.valueName ?? 'VALUE'}` : ''}`;
    return [flag, option.description];
  });
  options.push(['-h, --help', 'print this and exit, doing nothing else']);
  const width = Math.max(...options.map(([flag]) => flag!.length));
  const lines = [
    `Usage: ${spec.command}${spec.options && Object.keys(spec.options).length > 0 ? ' -- [options]' : ''}`,
    '',
    spec.description,
    '',
    'Options:',
    ...options.map(([flag, text]) => `  ${flag!.padEnd(width)}  ${text}`),
  ];
  const environment = Object.entries(spec.environment ?? {});
  if (environment.length > 0) {
    const envWidth = Math.max(...environment.map(([name]) => name.length));
    lines.push('', 'Environment:', ...environment.map(([name, text]) => `  ${name.padEnd(envWidth)}  ${text}`));
  }
  return `${lines.join('\n')}\n`;
}

/** Parses the script's arguments; `--help` prints the usage and exits 0, a wrong option exits 2. */
export function parseScriptArgs<O extends Record<string, OptionSpec>>(
  spec: ScriptSpec<O>,
  args = process.argv.slice(2),
): Values<O> {
  const options = Object.fromEntries(
    Object.entries(spec.options ?? {}).map(([name, { type, short }]) => [name, short ? { type, short } : { type }]),
  );
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usageText(spec)}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(usageText(spec));
    process.exit(0);
  }
  return values as Values<O>;
}
