#!/usr/bin/env python3
"""A consumer of a rotated key, for rekey's continuity tests (issue 14).

It calls the simulator's chat completions endpoint every --interval seconds
with the key it reads from AWS Secrets Manager (moto), the way applications
do it:

  --mode cache  through the AWS caching library (aws_secretsmanager_caching):
                SecretCache with secret_refresh_interval = --refresh, asking
                for stage AWSCURRENT explicitly on every call;
  --mode env    a restart-only consumer: the key is read once at start (from
                the environment variable REKEY_TEST_KEY when set, else
                AWSCURRENT from the store) and never again.

It runs until --duration passes, the --stop-file exists, the directory of
--out disappears (the test's temp dir was dropped), or SIGTERM/SIGINT.
It writes a JSON summary to --out (atomically: a temp file renamed over it)
at start, about once a second, and at exit with "final": true:

  {"pid", "mode", "calls", "ok", "failures", "failure_samples",
   "store_errors", "keys_seen", "elapsed", "final"}

failure_samples holds HTTP status codes (or an exception's class name),
never a key; keys_seen is a count. Nothing this program prints or writes
ever holds a key: the tests grep its output for every key issued.
"""

import signal
import sys

STOP = False


def _on_signal(_signum, _frame):
    global STOP
    STOP = True


# First of all, before the slow imports: a SIGTERM from a restart hook while
# boto3 loads must still end in a summary (or, before this line, in no calls).
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

# Loopback only: a proxy from the environment must not see these calls.
for _name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

MAX_SAMPLES = 20


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--endpoint", required=True, help="the moto URL")
    p.add_argument("--secret-id", required=True)
    p.add_argument(
        "--refresh",
        type=int,
        default=3600,
        help="secret_refresh_interval in whole seconds (the library draws each "
        "refresh delay with randint(round(R/2), R): a fraction would fail)",
    )
    p.add_argument("--chat-url", required=True)
    p.add_argument("--model", default="openai/gpt-4o-mini")
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=5.0, help="per chat call")
    p.add_argument("--duration", type=float, default=600.0, help="at most this long")
    p.add_argument("--stop-file", default=None)
    p.add_argument("--mode", choices=["cache", "env"], default="cache")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


class Summary:
    def __init__(self, args):
        self.args = args
        self.started = time.monotonic()
        self.calls = 0
        self.ok = 0
        self.failures = 0
        self.failure_samples = []
        self.store_errors = 0
        self.store_error_samples = []
        # sha256 digests, in memory only: never written, never printed.
        self._keys = set()

    def saw(self, key):
        self._keys.add(hashlib.sha256(key.encode()).digest())

    def failed(self, what):
        self.failures += 1
        if len(self.failure_samples) < MAX_SAMPLES:
            self.failure_samples.append(what)

    def store_failed(self, e):
        self.store_errors += 1
        if len(self.store_error_samples) < MAX_SAMPLES:
            self.store_error_samples.append(type(e).__name__)

    def write(self, final=False):
        doc = {
            "pid": os.getpid(),
            "mode": self.args.mode,
            "calls": self.calls,
            "ok": self.ok,
            "failures": self.failures,
            "failure_samples": self.failure_samples,
            "store_errors": self.store_errors,
            "store_error_samples": self.store_error_samples,
            "keys_seen": len(self._keys),
            "elapsed": round(time.monotonic() - self.started, 3),
            "final": final,
        }
        tmp = self.args.out + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(doc, f)
                f.write("\n")
            os.replace(tmp, self.args.out)
        except OSError:
            # The test's directory is gone: nobody reads this any more.
            pass


def secrets_client(args):
    import boto3

    # Loopback moto: the test credentials, whatever the environment has (a
    # restart hook gets PATH and REKEY_* only).
    return boto3.session.Session().client(
        "secretsmanager",
        region_name=args.region,
        endpoint_url=args.endpoint,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def key_source(args, summary):
    """A function giving the key for the next call (None: none to be had)."""
    client = secrets_client(args)
    if args.mode == "cache":
        from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

        config = SecretCacheConfig(secret_refresh_interval=args.refresh)
        cache = SecretCache(config=config, client=client)

        def cached():
            value = cache.get_secret_string(args.secret_id, version_stage="AWSCURRENT")
            return value.strip() if value else None

        return cached

    # Restart-only: read once, at start; retried only until a first read works.
    key = os.environ.get("REKEY_TEST_KEY", "").strip() or None
    while key is None and not should_stop(args, summary):
        try:
            out = client.get_secret_value(SecretId=args.secret_id, VersionStage="AWSCURRENT")
            key = (out.get("SecretString") or "").strip() or None
        except Exception as e:  # noqa: BLE001 - counted, class name only
            summary.store_failed(e)
            time.sleep(0.2)
    return lambda: key


def should_stop(args, summary):
    if STOP:
        return True
    if time.monotonic() - summary.started >= args.duration:
        return True
    if args.stop_file and os.path.exists(args.stop_file):
        return True
    return not os.path.isdir(os.path.dirname(os.path.abspath(args.out)))


def call(opener, args, key):
    """One chat call: None on success, else a status code or an exception's class name."""
    body = json.dumps(
        {"model": args.model, "messages": [{"role": "user", "content": "ping"}]}
    ).encode()
    request = urllib.request.Request(
        args.chat_url,
        data=body,
        method="POST",
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"},
    )
    try:
        with opener.open(request, timeout=args.timeout) as response:
            response.read()
            return None if 200 <= response.status < 300 else response.status
    except urllib.error.HTTPError as e:
        try:
            e.read()
        finally:
            e.close()
        return e.code
    except Exception as e:  # noqa: BLE001 - a transport failure is a failed call
        return type(e).__name__


def main(argv):
    args = parse_args(argv)
    summary = Summary(args)
    summary.write()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        get_key = key_source(args, summary)
    except Exception as e:  # noqa: BLE001 - e.g. the caching library is missing
        print(f"consumer: cannot set up ({type(e).__name__})", file=sys.stderr)
        summary.store_failed(e)
        summary.write(final=True)
        return 2
    summary.write()
    last_flush = time.monotonic()
    next_call = time.monotonic()
    while not should_stop(args, summary):
        try:
            key = get_key()
        except Exception as e:  # noqa: BLE001 - counted, class name only
            key = None
            summary.store_failed(e)
        if key:
            summary.saw(key)
            summary.calls += 1
            failure = call(opener, args, key)
            if failure is None:
                summary.ok += 1
            else:
                summary.failed(failure)
        now = time.monotonic()
        if now - last_flush >= 1.0:
            summary.write()
            last_flush = now
        next_call = max(next_call + args.interval, now)
        pause = next_call - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    summary.write(final=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
