"""The patch-stack domain: pins, series and headers, pristine sources, apply, refresh,
lint and PR cutting."""
