# Builds the operator image: docker build -t doris-operator:0.1.0 .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin doris-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/doris-operator /usr/local/bin/doris-operator
ENTRYPOINT ["/usr/local/bin/doris-operator"]
