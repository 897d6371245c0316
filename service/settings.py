"""The service's settings: one pydantic-settings class; nothing else in the service reads the environment.

    >>> from service.settings import Settings
    >>> settings = Settings(models_dir="models_store", max_batch=8)   # keywords > MICROGAN_* env > .env > defaults
    >>> settings.port, settings.max_n, settings.default_model
    (8000, 1024, 'voronoi64')

Every field is read from `MICROGAN_<FIELD>` (e.g. MICROGAN_MODELS_DIR) or from a `.env` file in the
working directory. The names are a contract with the Docker files and the tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MICROGAN_", env_file=".env", extra="ignore")

    host: str = "0.0.0.0"  # interface uvicorn binds
    port: Annotated[int, Field(ge=0, le=65535)] = 8000  # TCP port (0 = any free port)
    models_dir: Path = Path("models_store")  # TF Serving layout: <name>/<version>/saved_model.pb
    # Writable state of the jobs API: jobs.db, datasets/, jobs/<id>/ (run directories), api_key,
    # default_model.json (the activated default, which overrides default_model below).
    data_dir: Path = Path("data")
    # Model served when a request names none. When this is left unset and no model of this name is
    # loaded, a store holding exactly one model serves that one; when it is set explicitly it is strict.
    default_model: str = "voronoi64"
    max_n: Annotated[int, Field(ge=1)] = 1024  # images per request; above it: 413
    # Tessellation models drawn at another size: n x size^2 bytes of images per request; above it: 413.
    max_render_bytes: Annotated[int, Field(ge=64 * 64)] = 256 * 1024**2
    # auto | float32 | mixed_float16: the fp16/ variant is used only when a GPU is visible.
    precision: Literal["auto", "float32", "mixed_float16"] = "auto"
    # Seconds between rescans of models_dir for new versions; 0 = only on POST /models/reload.
    reload_interval: Annotated[float, Field(ge=0)] = 30.0
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # Micro-batching: concurrent requests share forward passes of up to max_batch images.
    max_batch: Annotated[int, Field(ge=1, le=8192)] = 16  # images per forward pass
    max_delay_ms: Annotated[float, Field(ge=0)] = 2.0  # longest wait for a pass to fill, ms
    # Threads running forward passes: full blocks run side by side, and a pass is assembled, encoded and
    # handed out while another computes (3 measured best on 2 cores: bench/serve.py --workers).
    batch_workers: Annotated[int, Field(ge=1, le=64)] = 3
    queue_limit: Annotated[int, Field(ge=1)] = 4096  # images accepted but not yet computed; above it: 503
    # true: every pass is padded to max_batch rows, one fixed shape, so an image is bit-identical
    # whatever it is batched with. false: passes of any size up to max_batch, cheaper at low load
    # (no padding), images identical within the sample signature's exactness (<= 0.1% of pixels
    # off by one grey level; none on the CPUs we measured).
    pad_batches: bool = True
    # Admin endpoints need `Authorization: Bearer <api_key>`. Unset: generated at first start into
    # data_dir/api_key (mode 0600; its path is logged) and reused afterwards.
    api_key: SecretStr | None = None
    protect_generate: bool = False  # true: POST /generate needs the key too
    max_concurrent_jobs: Annotated[int, Field(ge=1)] = 1  # training jobs running at once; the rest queue (FIFO)
    max_upload_bytes: Annotated[int, Field(ge=1)] = 1024**3  # POST /datasets file size; above it: 413
    # An upload's data once decompressed, and its 64x64 images after tiling; above either: 422 before
    # the data is read. A job holds its dataset as float32 (16 KiB an image): 200,000 are 3.3 GB.
    max_dataset_bytes: Annotated[int, Field(ge=1)] = 4 * 1024**3
    max_dataset_images: Annotated[int, Field(ge=1)] = 200_000
    # Seconds an upload may wait for its next piece of body before it is dropped with 408.
    upload_chunk_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    # Seconds a shutdown waits for trainers to checkpoint after SIGTERM before it kills them.
    job_stop_timeout_s: Annotated[float, Field(ge=0)] = 60.0
    # A replica serving a shared, read-only models_dir refuses activate/delete/train with 409.
    # Unset: read-only when models_dir exists and is not writable by this process.
    models_read_only: bool | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _queue_holds_a_request(self) -> Settings:
        if self.queue_limit < self.max_n:
            raise ValueError(
                f"queue_limit ({self.queue_limit}) must be >= max_n ({self.max_n}), "
                "or a request of max_n images could never be accepted"
            )
        return self

    @property
    def default_model_explicit(self) -> bool:
        """True when default_model was given (keyword, environment or .env) rather than defaulted."""
        return "default_model" in self.model_fields_set

    @property
    def models_writable(self) -> bool:
        """False on a replica whose models_dir is read-only (admin calls that write it answer 409)."""
        if self.models_read_only is not None:
            return not self.models_read_only
        return not self.models_dir.exists() or os.access(self.models_dir, os.W_OK)
