# microgan: the generation service (and the trainer its jobs run), for a GPU host by default.
#   docker build -t microgan .                                   # GPU image (tensorflow[and-cuda])
#   docker build --build-arg EXTRAS= -t microgan:cpu .           # CPU-only image
# The host needs only the NVIDIA driver and container toolkit: CUDA and cuDNN come as wheels.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=gpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from the same constraints file as CI, so code changes reuse this layer.
COPY pyproject.toml constraints.txt README.md ./
COPY training ./training
COPY microstructure ./microstructure
COPY service ./service
RUN pip install --no-compile -c constraints.txt ".${EXTRAS:+[$EXTRAS]}"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MICROGAN_HOST=0.0.0.0 \
    MICROGAN_PORT=8000 \
    MICROGAN_MODELS_DIR=/app/models_store \
    MICROGAN_DATA_DIR=/data \
    MICROGAN_PRECISION=auto
RUN groupadd --gid 10001 microgan \
    && useradd --create-home --uid 10001 --gid 10001 microgan \
    && mkdir -p /app /data \
    && chown microgan:microgan /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=microgan:microgan models_store ./models_store
USER 10001:10001
EXPOSE 8000
# /readyz is 200 once the default model is loaded and warm; python's urllib, so no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
CMD ["python", "-m", "service"]
