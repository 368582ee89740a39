"""The HTTP room: openEO API 1.2 routes, the openEO error model, the auth dependency."""
