"""Attribute sampling on the GPU: the same lookups as sources.SurfaceSource, on torch tensors."""

from __future__ import annotations

import numpy as np

from .sources import DEFAULT_METALLIC, DEFAULT_ROUGHNESS, SurfaceSource


def _interpolate(torch, per_vertex, corners, bary):
    values = torch.from_numpy(np.array(per_vertex, dtype=np.float32)).to(bary.device)[corners]
    if values.dim() == 2:
        return (values * bary).sum(dim=1)
    return (values * bary[..., None]).sum(dim=1)


def sample_texture(torch, image: np.ndarray, uv):
    """Bilinear lookup with wrapping, rows from v = 1 down (as sources.sample_texture); returns (k, c)."""
    height, width = image.shape[:2]
    texels = torch.as_tensor(image.reshape(height, width, -1), dtype=torch.float32, device=uv.device)
    x = torch.remainder(uv[:, 0].double(), 1.0) * width - 0.5
    y = (1.0 - torch.remainder(uv[:, 1].double(), 1.0)) * height - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = (x - x0).float()[:, None], (y - y0).float()[:, None]
    x0, y0 = x0.long(), y0.long()
    xs = (torch.remainder(x0, width), torch.remainder(x0 + 1, width))
    ys = (torch.remainder(y0, height), torch.remainder(y0 + 1, height))
    top = texels[ys[0], xs[0]] * (1 - fx) + texels[ys[0], xs[1]] * fx
    bottom = texels[ys[1], xs[0]] * (1 - fx) + texels[ys[1], xs[1]] * fx
    return top * (1 - fy) + bottom * fy


def sample_surface(torch, source: SurfaceSource, faces, bary) -> dict:
    """base_color (k, 4), metallic (k,), roughness (k,) as SurfaceSource.sample gives them, on the GPU."""
    device = bary.device
    corners = torch.from_numpy(np.array(source.faces, dtype=np.int64)).to(device)[faces]
    count = int(faces.shape[0])
    base = torch.as_tensor(np.asarray(source.base_factor, np.float32), device=device).expand(count, 4)
    uv = _interpolate(torch, source.uv, corners, bary) if source.uv is not None else None
    if source.base_texture is not None and uv is not None:
        base = base * sample_texture(torch, source.base_texture, uv)
    elif source.colors is not None:
        base = base * _interpolate(torch, source.colors, corners, bary)
    metallic = torch.full((count,), float(source.metallic_factor), device=device)
    roughness = torch.full((count,), float(source.roughness_factor), device=device)
    if source.metallic_vertex is not None:
        metallic = _interpolate(torch, source.metallic_vertex, corners, bary)
    if source.roughness_vertex is not None:
        roughness = _interpolate(torch, source.roughness_vertex, corners, bary)
    if source.mr_texture is not None and uv is not None:
        packed = sample_texture(torch, source.mr_texture, uv)
        roughness = roughness * packed[:, 1]
        metallic = metallic * packed[:, 2]
    return {"base_color": base.clamp(0, 1), "metallic": metallic.clamp(0, 1), "roughness": roughness.clamp(0, 1)}


def sample_any(torch, source, faces, bary, points) -> dict:
    """Surface sources and attribute volumes on the GPU; any other field through its own numpy code."""
    if isinstance(source, SurfaceSource):
        return sample_surface(torch, source, faces, bary)
    field = getattr(source, "field", None)
    if hasattr(field, "sample_torch"):  # a generator's attribute volume, looked up on the GPU
        values = field.sample_torch(torch, points)
        count = int(faces.shape[0])
        return {"base_color": values["base_color"].clamp(0, 1),
                "metallic": values.get("metallic", torch.full((count,), DEFAULT_METALLIC, device=bary.device)).clamp(0, 1),
                "roughness": values.get("roughness",
                                        torch.full((count,), DEFAULT_ROUGHNESS, device=bary.device)).clamp(0, 1)}
    values = source.sample(faces.cpu().numpy(), bary.double().cpu().numpy(), points.double().cpu().numpy())
    device = bary.device
    count = int(faces.shape[0])
    return {"base_color": torch.as_tensor(values["base_color"], dtype=torch.float32, device=device).reshape(count, 4),
            "metallic": torch.as_tensor(values.get("metallic", np.full(count, DEFAULT_METALLIC)),
                                        dtype=torch.float32, device=device),
            "roughness": torch.as_tensor(values.get("roughness", np.full(count, DEFAULT_ROUGHNESS)),
                                         dtype=torch.float32, device=device)}
