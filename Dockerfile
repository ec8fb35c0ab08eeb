# The Abacus worker image for production (docker-compose.yml points it at Kafka + ClickHouse).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY abacus ./abacus
COPY streams ./streams
COPY consumers ./consumers
COPY schemas ./schemas
RUN pip install --no-cache-dir . && useradd --create-home abacus
USER abacus
# The web server listens on every interface of the container, so the worker refuses to
# start with the default signing key: run it with ABACUS_WEB__SIGNING_KEY set to a long
# random secret (docker-compose.yml requires one), e.g. `docker run -e ABACUS_WEB__SIGNING_KEY=…`.
ENV ABACUS_HOME=/home/abacus/data \
    ABACUS_WEB__HOST=0.0.0.0
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:6066/readyz').status==200 else 1)"
CMD ["abacus", "up"]
