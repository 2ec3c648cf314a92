#!/usr/bin/env node
// Entry point for `tollgate`; the CLI itself is TypeScript, run directly by Node 24's type stripping.
import { main } from '../src/cli.ts';

process.exitCode = await main(process.argv.slice(2));
