"""Networks written in probekit from a paper and a released checkpoint's layout, for families
whose original code is not a dependency (BEATs, for SALMONN: :mod:`.beats`). Plain torch modules;
the wrappers that record them live in :mod:`probekit.wrappers`."""
