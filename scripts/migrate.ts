/** `npm run migrate`: applies pending migrations to DATABASE_URL (npm start does this by itself). */
import { migrate } from '#shared/migrations';
import { parseScriptArgs } from './usage.ts';

parseScriptArgs({
  command: 'npm run migrate',
  description: 'Applies the pending migrations (migrations/*.sql) to the database; `npm start` does this by itself.',
  environment: { DATABASE_URL: 'the database to migrate, e.g. postgres://user:pass@host:5432/hubfolio (required)' },
});

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is not set; e.g. DATABASE_URL=postgres://user:pass@host:5432/hubfolio npm run migrate');
  process.exit(2);
}
const applied = await migrate(url, { log: (line) => console.log(line) });
console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the schema is up to date');
