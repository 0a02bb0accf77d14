# syntax=docker/dockerfile:1
# rekey container image: built from the locked dependency tree, run as a
# non-root user on a distroless base (glibc, CA certificates, no shell).
#   docker build -t rekey:0.1.0 .
#   docker run --rm -v rekey-state:/var/lib/rekey -v "$PWD/rekey.toml:/etc/rekey/rekey.toml:ro" \
#       -p 127.0.0.1:9477:9477 rekey:0.1.0
# See deploy/README.md ("Docker").

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
# --locked: exactly the committed Cargo.lock, or fail. --no-default-features
# leaves the provider simulator out of the image (`rekey dev`/`rekey sim`
# then say so and exit 2).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin rekey \
    && install -D -m 0755 target/release/rekey /out/usr/local/bin/rekey \
    && install -d -m 0700 /out/var/lib/rekey

# cc: glibc, libgcc and CA certificates, which a Rust binary with rustls and
# the platform's trust store needs. :nonroot runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/rekey /usr/local/bin/rekey
# The state directory (journal, leases, audit log), owned by the runtime user;
# mount a volume here so rotations survive a restart.
COPY --from=build --chown=65532:65532 /out/var/lib/rekey /var/lib/rekey
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 65532:65532
VOLUME ["/var/lib/rekey"]
# Admin API: /healthz, /readyz, /metrics, /v1/status, POST /v1/policies/{name}/rotate.
# The config must set daemon.admin_listen = "0.0.0.0:9477" for it to be reachable.
EXPOSE 9477
ENTRYPOINT ["/usr/local/bin/rekey"]
CMD ["--log-format", "json", "run", "-c", "/etc/rekey/rekey.toml"]
