// All SQL of the SQLite engine, and its migrations. A migration is appended, never edited:
// migration N runs once, in a transaction, and PRAGMA user_version records that it ran.
export const MIGRATIONS: readonly string[] = [
  // 1: identities, tokens, access rules, connection history, path reports, policy version.
  `
  CREATE TABLE identities (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('agent', 'client', 'admin')),
    name TEXT NOT NULL,
    node_key TEXT,
    node_key_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (kind, name)
  );
  CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
  );
  CREATE INDEX tokens_identity ON tokens(identity_id);
  CREATE TABLE allow_rules (
    client_name TEXT NOT NULL,
    agent_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (client_name, agent_name)
  );
  CREATE TABLE connections (
    id INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    connected_at INTEGER NOT NULL,
    disconnected_at INTEGER,
    reason TEXT,
    remote TEXT
  );
  CREATE INDEX connections_identity ON connections(identity_id, connected_at);
  CREATE TABLE path_reports (
    id INTEGER PRIMARY KEY,
    reporter_id INTEGER NOT NULL REFERENCES identities(id),
    peer_id INTEGER NOT NULL REFERENCES identities(id),
    kind TEXT NOT NULL,
    endpoint TEXT,
    reported_at INTEGER NOT NULL
  );
  CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT INTO meta (key, value) VALUES ('policy_version', 0);
  `,
  // 2: node keys, each bound to the identity that first proved it; indexes for pruning by age.
  `
  CREATE TABLE node_keys (
    key TEXT PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  );
  CREATE INDEX node_keys_seen ON node_keys(last_seen_at);
  CREATE INDEX connections_ended ON connections(disconnected_at);
  CREATE INDEX path_reports_at ON path_reports(reported_at);
  `,
  // 3: which server process holds a connection, so that one replica's restart ends only its own.
  `
  ALTER TABLE connections ADD COLUMN replica TEXT NOT NULL DEFAULT '';
  `,
  // 4: dashboard sessions in the database, so that every replica serves every session.
  `
  CREATE TABLE dashboard_sessions (
    id INTEGER PRIMARY KEY,
    id_hash TEXT NOT NULL UNIQUE,
    token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions(expires_at);
  CREATE INDEX dashboard_sessions_token ON dashboard_sessions(token_id);
  `,
];

export const SQL = {
  pragmas: ['journal_mode = WAL', 'synchronous = NORMAL', 'foreign_keys = ON', 'busy_timeout = 5000'],
  identityByName: 'SELECT * FROM identities WHERE kind = ? AND name = ?',
  identityById: 'SELECT * FROM identities WHERE id = ?',
  insertIdentity: 'INSERT INTO identities (kind, name, created_at) VALUES (?, ?, ?) ON CONFLICT (kind, name) DO NOTHING',
  insertToken: 'INSERT INTO tokens (identity_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?)',
  tokenById: 'SELECT * FROM tokens WHERE id = ?',
  tokenByHash: 'SELECT * FROM tokens WHERE hash = ?',
  tokenValid: 'SELECT 1 FROM tokens WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)',
  revokeTokens: 'UPDATE tokens SET revoked_at = ? WHERE identity_id = ? AND revoked_at IS NULL',
  revokeToken: 'UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
  tokensByPrefix: 'SELECT * FROM tokens WHERE substr(hash, 1, ?) = ? ORDER BY id',
  unrevokedTokens: 'SELECT * FROM tokens WHERE identity_id = ? AND revoked_at IS NULL ORDER BY id',
  liveTokenCount: 'SELECT COUNT(*) AS n FROM tokens WHERE identity_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)',
  deleteTokens: 'DELETE FROM tokens WHERE identity_id = ?',
  deleteConnections: 'DELETE FROM connections WHERE identity_id = ?',
  deletePaths: 'DELETE FROM path_reports WHERE reporter_id = ? OR peer_id = ?',
  deleteNodeKeys: 'DELETE FROM node_keys WHERE identity_id = ?',
  deleteIdentity: 'DELETE FROM identities WHERE id = ?',
  deleteClientRules: 'DELETE FROM allow_rules WHERE client_name = ?',
  deleteAgentRules: 'DELETE FROM allow_rules WHERE agent_name = ?',
  deleteRule: 'DELETE FROM allow_rules WHERE client_name = ? AND agent_name = ?',
  bumpPolicy: "UPDATE meta SET value = value + 1 WHERE key = 'policy_version'",
  policyVersion: "SELECT value FROM meta WHERE key = 'policy_version'",
  insertAllow: 'INSERT INTO allow_rules (client_name, agent_name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  allowedAgents: 'SELECT agent_name FROM allow_rules WHERE client_name = ? ORDER BY agent_name',
  allRules: 'SELECT client_name, agent_name, created_at FROM allow_rules ORDER BY client_name, agent_name',
  allIdentities: 'SELECT * FROM identities ORDER BY kind, name',
  allTokens: 'SELECT * FROM tokens ORDER BY identity_id, id',
  lastConnections: `SELECT identity_id, MAX(connected_at) AS connected_at, MAX(disconnected_at) AS disconnected_at
                    FROM connections GROUP BY identity_id`,
  setNodeKey: 'UPDATE identities SET node_key = ?, node_key_at = ? WHERE id = ?',
  nodeKeyOwner: 'SELECT identity_id FROM node_keys WHERE key = ?',
  insertNodeKey: 'INSERT INTO node_keys (key, identity_id, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)',
  touchNodeKey: 'UPDATE node_keys SET last_seen_at = ? WHERE key = ?',
  pruneConnections: 'DELETE FROM connections WHERE disconnected_at IS NOT NULL AND disconnected_at < ?',
  prunePaths: 'DELETE FROM path_reports WHERE reported_at < ?',
  pruneNodeKeys: 'DELETE FROM node_keys WHERE last_seen_at < ?',
  insertConnection: 'INSERT INTO connections (identity_id, connected_at, remote, replica) VALUES (?, ?, ?, ?)',
  endConnection: 'UPDATE connections SET disconnected_at = ?, reason = ? WHERE id = ? AND disconnected_at IS NULL',
  endDangling: 'UPDATE connections SET disconnected_at = ?, reason = ? WHERE disconnected_at IS NULL AND replica = ?',
  connectionHistory: 'SELECT * FROM connections WHERE identity_id = ? ORDER BY id DESC LIMIT ?',
  // The paths one identity reported or was reported on, newest first, with the other side's name.
  pathHistory: `SELECT p.kind, p.endpoint, p.reported_at, p.reporter_id, o.kind AS other_kind, o.name AS other_name
    FROM path_reports p JOIN identities o ON o.id = CASE WHEN p.reporter_id = ? THEN p.peer_id ELSE p.reporter_id END
    WHERE p.reporter_id = ? OR p.peer_id = ? ORDER BY p.reported_at DESC, p.id DESC LIMIT ?`,
  insertPath: 'INSERT INTO path_reports (reporter_id, peer_id, kind, endpoint, reported_at) VALUES (?, ?, ?, ?, ?)',
  insertSession: 'INSERT INTO dashboard_sessions (id_hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
  pruneSessions: 'DELETE FROM dashboard_sessions WHERE expires_at <= ?',
  // Beyond the newest N (LIMIT -1: no limit on what the OFFSET leaves).
  boundSessions: 'DELETE FROM dashboard_sessions WHERE id IN (SELECT id FROM dashboard_sessions ORDER BY id DESC LIMIT -1 OFFSET ?)',
  liveSession: `SELECT s.id_hash, s.token_id, s.csrf, s.created_at, s.expires_at, i.name
    FROM dashboard_sessions s JOIN tokens t ON t.id = s.token_id JOIN identities i ON i.id = t.identity_id
    WHERE s.id_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?) AND i.kind = 'admin'`,
  endSession: 'DELETE FROM dashboard_sessions WHERE id_hash = ?',
} as const;
