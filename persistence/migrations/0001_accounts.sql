-- Accounts, sessions, two-factor, password resets, outbox and the security audit log.
--
-- Every table that holds user data has ENABLE and FORCE ROW LEVEL SECURITY and
-- policies on app_user_id(), which reads current_setting('app.user_id', true).
-- The application role (created by the migration runner) owns nothing and has
-- no BYPASSRLS, so these policies bind it. The few look-ups that must work
-- before a user is known are SECURITY DEFINER functions that return ids only.

CREATE FUNCTION app_user_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;

CREATE TABLE users (
    id uuid PRIMARY KEY,
    username text NOT NULL CHECK (username ~ '^[A-Za-z0-9_.-]{3,32}$'),
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND position('@' in email) > 1),
    password_hash text NOT NULL,
    role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 64),
    bio text NOT NULL DEFAULT '' CHECK (length(bio) <= 2000),
    genres text[] NOT NULL DEFAULT '{}',
    privacy text NOT NULL DEFAULT 'private' CHECK (privacy IN ('public', 'followers', 'private')),
    totp_secret text,
    totp_enabled boolean NOT NULL DEFAULT false,
    totp_last_step bigint NOT NULL DEFAULT 0,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- True when the current user is an active admin. SECURITY DEFINER: the
-- migration owner bypasses RLS, so this does not recurse into the users policy.
CREATE FUNCTION app_is_admin() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT EXISTS (SELECT 1 FROM users
                          WHERE id = app_user_id() AND role = 'admin' AND status = 'active') $$;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_select ON users FOR SELECT USING (id = app_user_id() OR app_is_admin());
CREATE POLICY users_insert ON users FOR INSERT
    WITH CHECK (id = app_user_id() AND role = 'user' AND status = 'active');
CREATE POLICY users_update ON users FOR UPDATE
    USING (id = app_user_id() OR app_is_admin())
    WITH CHECK (id = app_user_id() OR app_is_admin());
CREATE POLICY users_delete ON users FOR DELETE USING (id = app_user_id() OR app_is_admin());

-- Only admins (or the migration owner, e.g. `retoone user create --admin`)
-- change role or status, whatever the application asks for.
CREATE FUNCTION users_guard_privileges() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.role IS DISTINCT FROM OLD.role OR NEW.status IS DISTINCT FROM OLD.status)
       AND NOT app_is_admin()
       AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'only an admin may change role or status'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.role = 'user' AND OLD.role = 'admin' AND NOT EXISTS (
        SELECT 1 FROM users WHERE role = 'admin' AND status = 'active' AND id <> OLD.id) THEN
        RAISE EXCEPTION 'the last admin cannot be demoted' USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER users_guard BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_guard_privileges();

CREATE TABLE auth_sessions (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
ALTER TABLE auth_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY auth_sessions_own ON auth_sessions
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

CREATE TABLE recovery_codes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at timestamptz
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
ALTER TABLE recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY recovery_codes_own ON recovery_codes
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

CREATE TABLE password_resets (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX password_resets_user ON password_resets (user_id);
ALTER TABLE password_resets ENABLE ROW LEVEL SECURITY;
ALTER TABLE password_resets FORCE ROW LEVEL SECURITY;
CREATE POLICY password_resets_own ON password_resets
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

-- Messages for the user (there is no mail server): a delivery agent, or the
-- operator via `retoone outbox`, reads them with an owner connection.
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind text NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX outbox_user ON outbox (user_id);
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY outbox_own ON outbox
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

-- Append-only security audit log. user_id is the account the event is about
-- (NULL when no account matched, e.g. a login for an unknown name); actor_id is
-- who did it when that differs (an admin). Users read their own rows; admins all.
CREATE TABLE security_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    actor_id uuid REFERENCES users (id) ON DELETE SET NULL,
    kind text NOT NULL,
    ip text NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX security_events_user_kind ON security_events (user_id, kind, at);
ALTER TABLE security_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE security_events FORCE ROW LEVEL SECURITY;
CREATE POLICY security_events_select ON security_events FOR SELECT
    USING (user_id = app_user_id() OR app_is_admin());
CREATE POLICY security_events_insert ON security_events FOR INSERT
    WITH CHECK (user_id IS NULL OR user_id = app_user_id() OR app_is_admin());

-- Look-ups that must work before the user is known. They return ids and
-- timestamps only; everything else is then read under that user's RLS context.
CREATE FUNCTION auth_lookup_login(p_login text) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT id FROM users
           WHERE lower(username) = lower(p_login) OR lower(email) = lower(p_login)
           LIMIT 1 $$;

CREATE FUNCTION auth_lookup_session(p_token_hash bytea)
    RETURNS TABLE (session_id uuid, user_id uuid, expires_at timestamptz,
                   revoked_at timestamptz, user_status text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT s.id, s.user_id, s.expires_at, s.revoked_at, u.status
            FROM auth_sessions s JOIN users u ON u.id = s.user_id
           WHERE s.token_hash = p_token_hash $$;

CREATE FUNCTION auth_lookup_reset(p_token_hash bytea) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT user_id FROM password_resets WHERE token_hash = p_token_hash $$;

-- Admins end another user's sessions (on suspension) without seeing them.
CREATE FUNCTION admin_revoke_sessions(p_user uuid) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    ended integer;
BEGIN
    IF NOT app_is_admin() THEN
        RAISE EXCEPTION 'only an admin may end other users'' sessions'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE auth_sessions SET revoked_at = now()
     WHERE user_id = p_user AND revoked_at IS NULL;
    GET DIAGNOSTICS ended = ROW_COUNT;
    RETURN ended;
END $$;

REVOKE EXECUTE ON FUNCTION app_is_admin(), auth_lookup_login(text),
    auth_lookup_session(bytea), auth_lookup_reset(bytea), admin_revoke_sessions(uuid)
    FROM PUBLIC;
