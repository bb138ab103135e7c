# drwatch as a container: `docker build -t drwatch .`, then see the README's "Container image".

# Build stage: the wheels of drwatch and its dependencies, the same `pip install .` as the tests'.
FROM python:3.12-slim-trixie AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim-trixie
# The programs drwatch runs (core/programs.py; tests/test_dockerfile.py holds this line to it):
# Debian's newest PostgreSQL, whose pg_restore reads dumps of its own major version and older,
# its server binaries for drills' scratch clusters (no cluster created at install), Redis: its
# server (redis drill) and redis-check-rdb; bubblewrap, the sandbox every restore runs in (it
# works where the runtime allows user namespaces: README, "Trust").
ARG DEBIAN_FRONTEND=noninteractive
RUN mkdir -p /etc/postgresql-common \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql postgresql-client pgbackrest redis-server redis-tools bubblewrap \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/drwatch-*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/drwatch --create-home drwatch
USER 10001
VOLUME /var/lib/drwatch
EXPOSE 9839
HEALTHCHECK --interval=30s --timeout=5s \
    CMD ["drwatch", "healthcheck", "--web.listen-address", ":9839"]
ENTRYPOINT ["drwatch"]
CMD ["run", "--config", "/etc/drwatch/drwatch.yml"]
