# Herald: one image, one `herald` binary; the command picks the role
# (migrate, worker, api, check, …).
ARG SWIFT_VERSION=6.3
FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librabbitmq-dev libpq-dev libcurl4-openssl-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
# The dashboard's help page embeds the verification examples (symlinked from Sources).
COPY examples ./examples
COPY Tests ./Tests
COPY bench ./bench
RUN swift build -c release --product herald --static-swift-stdlib \
 && cp "$(swift build -c release --show-bin-path)/herald" /herald

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librabbitmq4 libpq5 libcurl4 libssl3 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app herald
WORKDIR /app
COPY --from=build /herald /usr/local/bin/herald
COPY migrations ./migrations
USER herald
ENV HERALD_MIGRATIONS_DIR=/app/migrations \
    HERALD_LOG_FORMAT=json
ENTRYPOINT ["herald"]
CMD ["--help"]
