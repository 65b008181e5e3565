# One image for the API and every worker (the worker extra: TensorFlow). Build the GPU variant with
#   docker build --build-arg PIP_EXTRAS=gpu -t pairscope:gpu .
# or an API-only image, without TensorFlow, with --build-arg PIP_EXTRAS= (empty).
FROM python:3.11-slim

ARG PIP_EXTRAS="worker"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY worker ./worker
COPY models ./models
COPY migrations ./migrations
COPY pairscope ./pairscope
RUN pip install ".${PIP_EXTRAS:+[$PIP_EXTRAS]}"

RUN useradd --create-home pairscope && mkdir -p /data && chown pairscope /data
USER pairscope
ENV PAIRSCOPE_DATA_DIR=/data
EXPOSE 8000
CMD ["pairscope", "serve"]
