"""What the hub's API takes and answers, described once as pydantic models.

One module per API area. The handlers in cloud/api validate request bodies through these
models (`base.read_body`), and the OpenAPI document (cloud/api/openapi.py) is derived from
them and the route table (cloud/api/routes_table.py), so the document cannot drift from
what is checked.
"""
