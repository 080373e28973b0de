"""Bake engines: cpu (Embree) and cuda (nvdiffrast) behind one interface, giving the same maps."""
