"""The daemon's web page: plain HTML, CSS and JavaScript files served as they are (no build step, no CDN)."""
