# Builds the operator image: docker build -t doris-operator:0.1.0 .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The commit `doris-operator version` and the doris_operator_build_info
# metric name (else what git says of the copied tree, if anything):
#   --build-arg DORIS_OPERATOR_COMMIT=$(git rev-parse --short=12 HEAD)
ARG DORIS_OPERATOR_COMMIT
RUN cargo build --release --locked --bin doris-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/doris-operator /usr/local/bin/doris-operator
# The allocator (mimalloc) gives freed memory back at once and commits its
# arenas as they fill: a third less peak memory (see src/main.rs).
ENV MIMALLOC_ARENA_EAGER_COMMIT=0 MIMALLOC_PURGE_DELAY=0
ENTRYPOINT ["/usr/local/bin/doris-operator"]
