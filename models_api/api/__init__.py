"""The API's shared parts: what every app of the service builds its endpoints from.

The catalogue (``models_api``) and the records (``records``) apps import from here and from
each other's models only. Nothing here knows a model of either app.

- ``routers``, ``viewsets``: the contract's URL shapes and conventions (strict query
  parameters, 404 for non-UUID ids and empty lists, 200 for writes);
- ``authentication``, ``auth_backends``, ``permissions``: tokens and Django's model permissions
  in one query;
- ``errors``: the domain errors services raise; ``exception_handler``: the one place they,
  DRF's and Django's errors become the contract's JSON bodies;
- ``parsers``, ``serializers``, ``serializer_fields``, ``filters``, ``names``, ``json_values``:
  reading input by one set of rules;
- ``openapi``: the schema's shared shapes and error responses;
- ``middleware``, ``request_guards``, ``sessions``, ``log_filters``: what runs around every
  request;
- ``ids``, ``json_lookups``, ``sqlite``: primary keys and what SQLite needs to run the same SQL;
- ``admin``: admin pieces both apps use.
"""
