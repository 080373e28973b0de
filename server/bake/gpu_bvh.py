"""GPU ray and closest-point queries on a triangle mesh: a linear BVH built and walked by CUDA kernels.

Why this and not a library. The bake needs three queries against a 1M-triangle high poly: first hit of
a short cage ray, any hit of an AO ray, and the closest surface point where a cage ray misses. On the
CPU, Embree (embreex) answers them, but it is single-threaded here. The GPU libraries that answer them
could not be used: NVIDIA Warp's wheel (149 MB) and Mitsuba's (63 MB, OptiX) are larger than what our
GPU test machine can take (64 MiB of carried files, no package index), so neither could be tested;
cuBVH and CuMesh are not on PyPI. nvdiffrast only rasterizes, and reformulating cage rays and
distance-limited AO as rasterization (depth peeling, shadow maps) gives answers that differ from the
CPU engine's rays, which the parity targets forbid. So the queries are the same rays as on the CPU,
answered by a small LBVH (Karras 2012: Morton order, one kernel for the hierarchy, one for the boxes)
and stack traversal kernels. CuPy compiles them at run time with NVRTC, so nothing here needs nvcc or
a wheel built against one torch version, which matters on the Space, where there is no compiler.
"""

from __future__ import annotations

import numpy as np

STACK_DEPTH = 96
THREADS = 256

_SOURCE = r"""
#define STACK_DEPTH @STACK@

__device__ __forceinline__ int prefix(const unsigned int* codes, int n, int i, int j) {
    if (j < 0 || j >= n) return -1;
    unsigned int a = codes[i], b = codes[j];
    if (a == b) return 32 + __clz((unsigned int)(i ^ j));   // equal codes: the index breaks the tie
    return __clz(a ^ b);
}

extern "C" __global__ void build_hierarchy(const unsigned int* codes, int n, int* left, int* right, int* parent) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n - 1) return;
    int d = (prefix(codes, n, i, i + 1) - prefix(codes, n, i, i - 1)) >= 0 ? 1 : -1;
    int shortest = prefix(codes, n, i, i - d);
    int reach = 2;
    while (prefix(codes, n, i, i + reach * d) > shortest) reach <<= 1;
    int length = 0;
    for (int t = reach >> 1; t >= 1; t >>= 1)
        if (prefix(codes, n, i, i + (length + t) * d) > shortest) length += t;
    int j = i + length * d;
    int common = prefix(codes, n, i, j);
    int split = 0, t = length;
    do {
        t = (t + 1) >> 1;
        if (prefix(codes, n, i, i + (split + t) * d) > common) split += t;
    } while (t > 1);
    int gamma = i + split * d + min(d, 0);
    int a = (min(i, j) == gamma) ? (n - 1 + gamma) : gamma;
    int b = (max(i, j) == gamma + 1) ? (n - 1 + gamma + 1) : gamma + 1;
    left[i] = a; right[i] = b;
    parent[a] = i; parent[b] = i;
}

extern "C" __global__ void fit_boxes(const float* tris, int n, const int* parent, const int* left,
                                     const int* right, float* boxes, int* arrivals) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int node = n - 1 + i;
    const float* t = tris + 9 * i;
    for (int a = 0; a < 3; ++a) {
        // A hair of padding keeps flat, axis-aligned triangles inside their boxes despite rounding.
        float lo = fminf(fminf(t[a], t[3 + a]), t[6 + a]), hi = fmaxf(fmaxf(t[a], t[3 + a]), t[6 + a]);
        float pad = 1e-6f * fmaxf(fabsf(lo), fabsf(hi)) + 1e-9f;
        boxes[6 * node + a] = lo - pad;
        boxes[6 * node + 3 + a] = hi + pad;
    }
    __threadfence();
    int p = parent[node];
    while (p >= 0) {
        if (atomicAdd(&arrivals[p], 1) == 0) return;   // the second child to arrive fits the parent
        int l = left[p], r = right[p];
        for (int a = 0; a < 3; ++a) {
            boxes[6 * p + a] = fminf(__ldcg(boxes + 6 * l + a), __ldcg(boxes + 6 * r + a));
            boxes[6 * p + 3 + a] = fmaxf(__ldcg(boxes + 6 * l + 3 + a), __ldcg(boxes + 6 * r + 3 + a));
        }
        __threadfence();
        p = parent[p];
    }
}

__device__ __forceinline__ float slab(const float* box, float3 o, float3 inv, float tmax) {
    float t0 = (box[0] - o.x) * inv.x, t1 = (box[3] - o.x) * inv.x;
    float lo = fminf(t0, t1), hi = fmaxf(t0, t1);
    t0 = (box[1] - o.y) * inv.y; t1 = (box[4] - o.y) * inv.y;
    lo = fmaxf(lo, fminf(t0, t1)); hi = fminf(hi, fmaxf(t0, t1));
    t0 = (box[2] - o.z) * inv.z; t1 = (box[5] - o.z) * inv.z;
    lo = fmaxf(lo, fminf(t0, t1)); hi = fminf(hi, fmaxf(t0, t1));
    lo = fmaxf(lo, 0.0f); hi = fminf(hi, tmax);
    return lo <= hi ? lo : 1e30f;
}

__device__ __forceinline__ bool intersect(const float* v, float3 o, float3 d, float tmax,
                                          float* t, float* u, float* w) {
    float3 e1 = make_float3(v[3] - v[0], v[4] - v[1], v[5] - v[2]);
    float3 e2 = make_float3(v[6] - v[0], v[7] - v[1], v[8] - v[2]);
    float3 p = make_float3(d.y * e2.z - d.z * e2.y, d.z * e2.x - d.x * e2.z, d.x * e2.y - d.y * e2.x);
    float det = e1.x * p.x + e1.y * p.y + e1.z * p.z;
    if (det == 0.0f) return false;
    float inv = 1.0f / det;
    float3 s = make_float3(o.x - v[0], o.y - v[1], o.z - v[2]);
    float a = (s.x * p.x + s.y * p.y + s.z * p.z) * inv;
    if (a < 0.0f || a > 1.0f) return false;
    float3 q = make_float3(s.y * e1.z - s.z * e1.y, s.z * e1.x - s.x * e1.z, s.x * e1.y - s.y * e1.x);
    float b = (d.x * q.x + d.y * q.y + d.z * q.z) * inv;
    if (b < 0.0f || a + b > 1.0f) return false;
    float hit = (e2.x * q.x + e2.y * q.y + e2.z * q.z) * inv;
    if (hit < 0.0f || hit > tmax) return false;
    *t = hit; *u = a; *w = b;
    return true;
}

// mode 0: closest hit (face, u, v, t); mode 1: any hit (face >= 0 means occluded).
extern "C" __global__ void trace(const float* boxes, const int* left, const int* right, const float* tris,
                                 const int* order, int n, const float* origins, const float* dirs,
                                 const float* tmax, int count, int mode, int* face, float* uvt, int* overflow) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= count) return;
    float3 o = make_float3(origins[3 * r], origins[3 * r + 1], origins[3 * r + 2]);
    float3 d = make_float3(dirs[3 * r], dirs[3 * r + 1], dirs[3 * r + 2]);
    float3 inv = make_float3(1.0f / d.x, 1.0f / d.y, 1.0f / d.z);
    float best = tmax[r], bu = 0.0f, bv = 0.0f;
    int hit = -1;
    int stack[STACK_DEPTH];
    float near[STACK_DEPTH];
    int top = 0;
    float t0 = slab(boxes, o, inv, best);
    if (t0 < 1e30f) { stack[0] = 0; near[0] = t0; top = 1; }
    while (top > 0) {
        --top;
        int node = stack[top];
        if (near[top] > best) continue;
        if (node >= n - 1) {
            float t, u, w;
            int leaf = node - (n - 1);
            if (intersect(tris + 9 * leaf, o, d, best, &t, &u, &w)) {
                best = t; bu = u; bv = w; hit = order[leaf];
                if (mode == 1) break;
            }
            continue;
        }
        int a = left[node], b = right[node];
        float ta = slab(boxes + 6 * a, o, inv, best), tb = slab(boxes + 6 * b, o, inv, best);
        if (ta > tb) { int s = a; a = b; b = s; float f = ta; ta = tb; tb = f; }
        if (top + 2 > STACK_DEPTH) { atomicAdd(overflow, 1); break; }
        if (tb < 1e30f) { stack[top] = b; near[top] = tb; ++top; }
        if (ta < 1e30f) { stack[top] = a; near[top] = ta; ++top; }
    }
    face[r] = hit;
    uvt[3 * r] = bu; uvt[3 * r + 1] = bv; uvt[3 * r + 2] = hit >= 0 ? best : 0.0f;
}

__device__ __forceinline__ float box_distance2(const float* box, float3 p) {
    float dx = fmaxf(fmaxf(box[0] - p.x, 0.0f), p.x - box[3]);
    float dy = fmaxf(fmaxf(box[1] - p.y, 0.0f), p.y - box[4]);
    float dz = fmaxf(fmaxf(box[2] - p.z, 0.0f), p.z - box[5]);
    return dx * dx + dy * dy + dz * dz;
}

__device__ __forceinline__ float dot3(float3 a, float3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
__device__ __forceinline__ float3 sub3(float3 a, float3 b) { return make_float3(a.x - b.x, a.y - b.y, a.z - b.z); }

// Barycentric weights of the point of triangle abc nearest to p (Voronoi regions of the vertices, edges, face).
__device__ float3 nearest_on_triangle(float3 p, float3 a, float3 b, float3 c) {
    float3 ab = sub3(b, a), ac = sub3(c, a), ap = sub3(p, a);
    float d1 = dot3(ab, ap), d2 = dot3(ac, ap);
    if (d1 <= 0.0f && d2 <= 0.0f) return make_float3(1.0f, 0.0f, 0.0f);
    float3 bp = sub3(p, b);
    float d3 = dot3(ab, bp), d4 = dot3(ac, bp);
    if (d3 >= 0.0f && d4 <= d3) return make_float3(0.0f, 1.0f, 0.0f);
    float vc = d1 * d4 - d3 * d2;
    if (vc <= 0.0f && d1 >= 0.0f && d3 <= 0.0f) { float s = d1 / (d1 - d3); return make_float3(1.0f - s, s, 0.0f); }
    float3 cp = sub3(p, c);
    float d5 = dot3(ab, cp), d6 = dot3(ac, cp);
    if (d6 >= 0.0f && d5 <= d6) return make_float3(0.0f, 0.0f, 1.0f);
    float vb = d5 * d2 - d1 * d6;
    if (vb <= 0.0f && d2 >= 0.0f && d6 <= 0.0f) { float s = d2 / (d2 - d6); return make_float3(1.0f - s, 0.0f, s); }
    float va = d3 * d6 - d5 * d4;
    if (va <= 0.0f && (d4 - d3) >= 0.0f && (d5 - d6) >= 0.0f) {
        float s = (d4 - d3) / ((d4 - d3) + (d5 - d6));
        return make_float3(0.0f, 1.0f - s, s);
    }
    float scale = 1.0f / (va + vb + vc);
    float v = vb * scale, w = vc * scale;
    return make_float3(1.0f - v - w, v, w);
}

extern "C" __global__ void nearest(const float* boxes, const int* left, const int* right, const float* tris,
                                   const int* order, int n, const float* points, int count,
                                   int* face, float* bary, float* distance, int* overflow) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= count) return;
    float3 p = make_float3(points[3 * r], points[3 * r + 1], points[3 * r + 2]);
    float best = 1e38f;
    float3 weights = make_float3(1.0f, 0.0f, 0.0f);
    int hit = -1;
    int stack[STACK_DEPTH];
    float near[STACK_DEPTH];
    stack[0] = 0; near[0] = box_distance2(boxes, p);
    int top = 1;
    while (top > 0) {
        --top;
        int node = stack[top];
        if (near[top] > best) continue;
        if (node >= n - 1) {
            int leaf = node - (n - 1);
            const float* v = tris + 9 * leaf;
            float3 a = make_float3(v[0], v[1], v[2]), b = make_float3(v[3], v[4], v[5]), c = make_float3(v[6], v[7], v[8]);
            float3 w = nearest_on_triangle(p, a, b, c);
            float3 q = make_float3(w.x * a.x + w.y * b.x + w.z * c.x, w.x * a.y + w.y * b.y + w.z * c.y,
                                   w.x * a.z + w.y * b.z + w.z * c.z);
            float3 e = sub3(q, p);
            float d2 = dot3(e, e);
            if (d2 < best) { best = d2; weights = w; hit = order[leaf]; }
            continue;
        }
        int a = left[node], b = right[node];
        float da = box_distance2(boxes + 6 * a, p), db = box_distance2(boxes + 6 * b, p);
        if (da > db) { int s = a; a = b; b = s; float f = da; da = db; db = f; }
        if (top + 2 > STACK_DEPTH) { atomicAdd(overflow, 1); break; }
        if (db <= best) { stack[top] = b; near[top] = db; ++top; }
        if (da <= best) { stack[top] = a; near[top] = da; ++top; }
    }
    face[r] = hit;
    bary[3 * r] = weights.x; bary[3 * r + 1] = weights.y; bary[3 * r + 2] = weights.z;
    distance[r] = sqrtf(best);
}
""".replace("@STACK@", str(STACK_DEPTH))

_MODULE = None


def _kernels():
    global _MODULE
    if _MODULE is None:
        import cupy

        _MODULE = cupy.RawModule(code=_SOURCE, options=("--std=c++14",))
    return _MODULE


def _expand_bits(v):
    """Spread the low 10 bits of v so two zero bits separate each (for 30-bit Morton codes)."""
    v = (v * 0x00010001) & 0xFF0000FF
    v = (v * 0x00000101) & 0x0F00F00F
    v = (v * 0x00000011) & 0xC30C30C3
    return (v * 0x00000005) & 0x49249249


def torch_stream(torch, cupy):
    """CuPy's handle on torch's current CUDA stream (the null stream when torch uses the default one)."""
    pointer = torch.cuda.current_stream().cuda_stream
    return cupy.cuda.ExternalStream(pointer) if pointer else cupy.cuda.Stream.null


def _blocks(count: int) -> tuple[int]:
    return ((count + THREADS - 1) // THREADS,)


class TriangleBVH:
    """A BVH over one triangle mesh on the current CUDA device; queries take and return torch tensors."""

    def __init__(self, vertices, faces):
        import cupy
        import torch

        self.torch, self.cupy = torch, cupy
        device = torch.device("cuda")
        vertices = torch.from_numpy(np.array(vertices, dtype=np.float32)).to(device)
        faces = torch.from_numpy(np.array(faces, dtype=np.int64)).to(device)
        n = int(faces.shape[0])
        if n == 0:
            raise ValueError("a BVH needs at least one triangle")
        self.n = n
        triangles = vertices[faces]  # (n, 3, 3)
        centroids = triangles.mean(dim=1)
        lo = centroids.min(dim=0).values
        extent = (centroids.max(dim=0).values - lo).clamp_min(1e-12)
        cells = ((centroids - lo) / extent * 1024.0).clamp(0, 1023).to(torch.int64)
        codes = (_expand_bits(cells[:, 0]) << 2) | (_expand_bits(cells[:, 1]) << 1) | _expand_bits(cells[:, 2])
        codes, order = torch.sort(codes, stable=True)
        self.order = order.to(torch.int32).contiguous()
        self.tris = triangles[order].reshape(n, 9).contiguous()
        nodes = 2 * n - 1
        self.left = torch.full((max(n - 1, 1),), -1, dtype=torch.int32, device=device)
        self.right = torch.full((max(n - 1, 1),), -1, dtype=torch.int32, device=device)
        self.parent = torch.full((nodes,), -1, dtype=torch.int32, device=device)
        self.boxes = torch.empty((nodes, 6), dtype=torch.float32, device=device)
        arrivals = torch.zeros((max(n - 1, 1),), dtype=torch.int32, device=device)
        codes32 = codes.to(torch.int32).contiguous()
        if n > 1:
            self._launch("build_hierarchy", n - 1, (self._c(codes32), np.int32(n), self._c(self.left),
                                                    self._c(self.right), self._c(self.parent)))
        self._launch("fit_boxes", n, (self._c(self.tris), np.int32(n), self._c(self.parent), self._c(self.left),
                                      self._c(self.right), self._c(self.boxes), self._c(arrivals)))
        self._overflow = torch.zeros(1, dtype=torch.int32, device=device)

    def _c(self, tensor):
        return self.cupy.asarray(tensor)

    def _args(self):
        return (self._c(self.boxes), self._c(self.left), self._c(self.right), self._c(self.tris),
                self._c(self.order), np.int32(self.n))

    def _check_overflow(self) -> None:
        if int(self._overflow.item()):
            raise RuntimeError(f"BVH traversal stack ({STACK_DEPTH}) overflowed on {int(self._overflow.item())} queries")

    def _launch(self, name: str, count: int, args: tuple) -> None:
        """Run a kernel on torch's current stream, so it orders with the torch work around it."""
        with torch_stream(self.torch, self.cupy):
            _kernels().get_function(name)(_blocks(count), (THREADS,), args)

    def _trace(self, origins, directions, distance, mode: int):
        torch = self.torch
        origins = origins.to(torch.float32).contiguous()
        directions = directions.to(torch.float32).contiguous()
        count = int(origins.shape[0])
        limit = torch.as_tensor(distance, dtype=torch.float32, device=origins.device).expand(count).contiguous()
        face = torch.empty(count, dtype=torch.int32, device=origins.device)
        uvt = torch.empty((count, 3), dtype=torch.float32, device=origins.device)
        self._overflow.zero_()
        if count:
            self._launch("trace", count, (*self._args(), self._c(origins), self._c(directions), self._c(limit),
                                          np.int32(count), np.int32(mode), self._c(face), self._c(uvt),
                                          self._c(self._overflow)))
        self._check_overflow()
        return face, uvt

    def first_hits(self, origins, directions, distance):
        """(face, barycentric (k, 3), t) of the first hit with 0 <= t <= distance; face is -1 for a miss."""
        face, uvt = self._trace(origins, directions, distance, mode=0)
        u, v = uvt[:, 0], uvt[:, 1]
        bary = self.torch.stack([1 - u - v, u, v], dim=1)
        t = self.torch.where(face >= 0, uvt[:, 2], self.torch.full_like(u, float("inf")))
        return face.to(self.torch.int64), bary, t

    def occluded(self, origins, directions, distance):
        """True where the ray meets any triangle with 0 <= t <= distance."""
        face, _ = self._trace(origins, directions, distance, mode=1)
        return face >= 0

    def closest_points(self, points):
        """(face, barycentric (k, 3), distance) of the nearest surface point to each query point."""
        torch = self.torch
        points = points.to(torch.float32).contiguous()
        count = int(points.shape[0])
        face = torch.empty(count, dtype=torch.int32, device=points.device)
        bary = torch.empty((count, 3), dtype=torch.float32, device=points.device)
        distance = torch.empty(count, dtype=torch.float32, device=points.device)
        self._overflow.zero_()
        if count:
            self._launch("nearest", count, (*self._args(), self._c(points), np.int32(count), self._c(face),
                                            self._c(bary), self._c(distance), self._c(self._overflow)))
        self._check_overflow()
        return face.to(torch.int64), bary, distance
