# burnguard worker, alerter and simulator image, for docker-compose.yml (the local scripts need no Docker).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY detectors ./detectors
COPY alerting ./alerting
COPY streams ./streams
COPY burnguard ./burnguard
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["burnguard"]
CMD ["--help"]
