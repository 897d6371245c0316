"""The generation service: FastAPI over the SavedModels of a models_store (never the training code).

python -m service                                   # 0.0.0.0:8000, models from ./models_store
curl -X POST 'localhost:8000/generate?n=16&seed=7&format=grid' -o grid.png
"""
