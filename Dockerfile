# Wharf in a container: a static-ish Rust binary on distroless, as a non-root user.
#   docker build -t wharf .
#   docker run -p 8000:8000 -e MCP_API_KEY=... -e WHARF_ALLOWED_HOSTS=localhost wharf
# docs/deploy.md has every target; docker-compose.yml adds PostgreSQL and Redis.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin wharf \
    && install -D -m 0755 target/release/wharf /out/usr/local/bin/wharf \
    && install -d -o 65532 -g 65532 /out/data

# glibc and libgcc only, no shell: nothing to exploit beyond Wharf itself.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /
# PORT, as platforms set it (Cloud Run, App Runner, Azure Container Apps, ...):
# Wharf listens on 0.0.0.0:$PORT; 8000 when the platform says nothing.
ENV PORT=8000 \
    WHARF_DATA_DIR=/data \
    WHARF_LOG_FORMAT=json \
    WHARF_DRAIN_DELAY=5s
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=4s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/wharf", "health"]
ENTRYPOINT ["/usr/local/bin/wharf"]
CMD ["serve"]
