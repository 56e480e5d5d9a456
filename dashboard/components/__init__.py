"""Pieces more than one page shows: the shell (navbar, banners), the histogram view."""
