"""The HTTP routes, one APIRouter per module: generate, models, health."""
