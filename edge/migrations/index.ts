/**
 * The D1 schema, as an ordered list of migrations the edge applies itself
 * (../db/migrate.ts) before its first query. Append new ones; never edit or
 * reorder one that has shipped.
 */
import type { Migration } from '../db/migrate';
import { createUsers } from './0001-create-users';
import { createAgents } from './0002-create-agents';

export const migrations: readonly Migration[] = [createUsers, createAgents];
