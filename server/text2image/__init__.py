"""Text to image for text-to-game-asset: prompt expansion, diffusers adapters, and the clean-background gate.

Nothing here imports torch or diffusers until a model runs. The public pieces:
text_to_image(prompt, options) -> (image, record); expand_prompt; check_background; models.report() for health.
"""

from .expand import ExpandedPrompt, expand_prompt, find_subject
from .gate import GateSettings, GateVerdict, check_background
from .models import MODELS, ModelUnavailable, report
from .prompt import check_prompt
from .runner import ImagesRefused, gpu_estimate, text_to_image

__all__ = ["ExpandedPrompt", "GateSettings", "GateVerdict", "ImagesRefused", "MODELS", "ModelUnavailable",
           "check_background", "check_prompt", "expand_prompt", "find_subject", "gpu_estimate", "report",
           "text_to_image"]
