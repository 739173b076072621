"""Analysis of the candidate catalog and of the artificial-cluster test (thesis §4.2.3, §4.3).

- :mod:`.arms`: spiral-arm geometry — the signed distance from the nearest dust lane in the
  deprojected disk (positive on the leading side) and arm membership.
"""
