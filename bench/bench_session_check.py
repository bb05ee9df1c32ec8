"""What ending sessions at once costs per request (a script, not a test).

Every authenticated request already makes one round trip (the rate-limit counter and the
user lookup). Issue 14 item 9 adds to that same statement a probe: was the token's
session (refresh-token family, claim "sid") revoked? This measures that statement with
and without the probe, interleaved, on a database holding many sessions:
`--users` users with `--tokens-per-user` refresh tokens each, a third of the families
revoked (a partial index on revoked rows serves the probe).

    .venv/bin/python bench/bench_session_check.py [--n 3000] [--users 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import bench_database, percentile

# the per-request statement as it was before item 9 (ratelimit._HIT_WITH_USER minus
# the probe): the reference
IP = "127.0.0.1"  # the caller address each request also counts against (ipauth:)
BEFORE = """
WITH hit AS (
INSERT INTO rate_limit_counters AS r (bucket, window_start, count)
VALUES (:bucket, to_timestamp(:window_start), 1)
ON CONFLICT (bucket, window_start) DO UPDATE SET count = r.count + 1
RETURNING r.count)
SELECT hit.count AS hits, u.email, u.role, u.plan, u.is_active, u.auth_epoch
FROM hit LEFT JOIN users u ON u.id = :user_id
"""


def line(name: str, samples: list[float]) -> str:
    return (f"{name:<44} p50 {percentile(samples, 50):6.3f} ms   p99 "
            f"{percentile(samples, 99):6.3f} ms   mean {statistics.fmean(samples):6.3f} ms")


def fill(users: int, per_user: int) -> tuple[str, str, str]:
    """Users and sessions; returns (a user id, a live family of theirs, a revoked one)."""
    from sqlalchemy import text

    from amazon_pilot.platform.db import transaction

    with transaction() as conn:
        conn.execute(text(
            "INSERT INTO users (email, password_hash) SELECT 'bench-' || g || '@example.com',"
            " 'x' FROM generate_series(1, :n) g"), {"n": users})
        # families: one per user per `per_user` tokens (rotations), every third revoked
        conn.execute(text(
            "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at,"
            " revoked_at) SELECT u.id, f.family, md5(random()::text || g),"
            " now() + interval '30 days', CASE WHEN f.n % 3 = 0 THEN now() END"
            " FROM (SELECT id, row_number() OVER () AS n FROM users) u"
            " CROSS JOIN LATERAL (SELECT gen_random_uuid() AS family, u.n AS n) f"
            " CROSS JOIN generate_series(1, :per) g"), {"per": per_user})
        conn.execute(text("ANALYZE users; ANALYZE refresh_tokens"))
        row = conn.execute(text(
            "SELECT t.user_id, t.family_id FROM refresh_tokens t WHERE t.revoked_at IS NULL"
            " LIMIT 1")).one()
        revoked = conn.execute(text(
            "SELECT family_id FROM refresh_tokens WHERE revoked_at IS NOT NULL LIMIT 1"
        )).scalar_one()
    return str(row.user_id), str(row.family_id), str(revoked)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--tokens-per-user", type=int, default=10)
    args = parser.parse_args()

    with bench_database() as url:
        os.environ["DATABASE_URL"] = url
        from sqlalchemy import text

        from amazon_pilot.platform import ratelimit
        from amazon_pilot.platform.db import autocommit_engine
        from amazon_pilot.platform.settings import reset_settings

        reset_settings()
        user_id, live, revoked = fill(args.users, args.tokens_per_user)
        engine = autocommit_engine()

        def before() -> None:
            start, _ = ratelimit.current_window(60)
            with engine.connect() as conn:
                conn.execute(text(BEFORE), {"bucket": f"user:{user_id}",
                                            "window_start": start, "user_id": user_id}).one()

        cases = {
            "before item 9 (no session probe)": before,
            "now, token of a live session": lambda: ratelimit.hit_with_user(
                user_id, IP, session_id=live),
            "now, token of a revoked session": lambda: ratelimit.hit_with_user(
                user_id, IP, session_id=revoked),
            "now, token without a session claim": lambda: ratelimit.hit_with_user(user_id, IP),
        }
        assert ratelimit.hit_with_user(user_id, IP, session_id=revoked)[2].session_revoked
        assert not ratelimit.hit_with_user(user_id, IP, session_id=live)[2].session_revoked
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(200):  # warm the pool and the plans
            for fn in cases.values():
                fn()
        for _ in range(args.n):  # interleaved: a slow spell hits every case alike
            for name, fn in cases.items():
                started = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - started) * 1000)
        rows = args.users * args.tokens_per_user
        print(f"{args.n} statements per case, interleaved; {args.users} users, {rows} "
              f"refresh tokens, 1/3 of families revoked; Python {sys.version.split()[0]}")
        reference = percentile(samples["before item 9 (no session probe)"], 50)
        for name, values in samples.items():
            print(line(name, values) + f"   p50 {percentile(values, 50) - reference:+6.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
