# The modelstream services image used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY streams streams
COPY services services
COPY scripts scripts
RUN pip install --no-cache-dir .
EXPOSE 8080
ENTRYPOINT ["modelstream"]
