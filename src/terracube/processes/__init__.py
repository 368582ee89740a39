"""The openEO processes, one function each, on xarray + dask; ``registry`` binds them to their specs."""
