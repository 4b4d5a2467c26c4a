# The modelstream services image used by docker-compose.yml. Runs as a non-root user.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY streams streams
COPY services services
COPY scripts scripts
RUN pip install --no-cache-dir . \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin modelstream \
    && install -d -o modelstream -g modelstream -m 0700 /data
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["modelstream"]
