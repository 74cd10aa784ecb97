/// The OpenAPI 3.1 description of every route, served at `/v1/openapi.json`. A test
/// fails when a route is missing from it or it documents one the router lacks.
public enum OpenAPIDocument {
    public static let json = #"""
{
  "components": {
    "responses": {
      "Problem": {
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        },
        "description": "Problem (RFC 9457)"
      }
    },
    "schemas": {
      "Attempt": {
        "properties": {
          "attempt": {
            "type": "integer"
          },
          "duration_ms": {
            "type": "integer"
          },
          "error_class": {
            "enum": [
              "timeout",
              "connect",
              "dns",
              "tls",
              "http",
              "blocked",
              "network"
            ],
            "type": "string"
          },
          "error_message": {
            "type": "string"
          },
          "request_id": {
            "format": "uuid",
            "type": "string"
          },
          "response_excerpt": {
            "type": "string"
          },
          "started_at": {
            "format": "date-time",
            "type": "string"
          },
          "status_code": {
            "type": "integer"
          },
          "trigger": {
            "enum": [
              "automatic",
              "manual"
            ],
            "type": "string"
          }
        },
        "type": "object"
      },
      "Delivery": {
        "properties": {
          "attempts": {
            "type": "integer"
          },
          "created_at": {
            "format": "date-time",
            "type": "string"
          },
          "delivered_at": {
            "format": "date-time",
            "type": "string"
          },
          "endpoint_id": {
            "format": "uuid",
            "type": "string"
          },
          "event_id": {
            "type": "string"
          },
          "event_type": {
            "type": "string"
          },
          "id": {
            "format": "uuid",
            "type": "string"
          },
          "last_error_class": {
            "type": "string"
          },
          "last_status_code": {
            "type": "integer"
          },
          "next_attempt_at": {
            "format": "date-time",
            "type": "string"
          },
          "request_id": {
            "format": "uuid",
            "type": "string"
          },
          "status": {
            "enum": [
              "pending",
              "retrying",
              "delivered",
              "failed",
              "skipped"
            ],
            "type": "string"
          }
        },
        "type": "object"
      },
      "DeliveryDetail": {
        "properties": {
          "attempts": {
            "items": {
              "$ref": "#/components/schemas/Attempt"
            },
            "type": "array"
          },
          "delivery": {
            "$ref": "#/components/schemas/Delivery"
          },
          "event": {
            "properties": {
              "attributes": {
                "type": "object"
              },
              "data": {
                "description": "the data object as sent",
                "type": "string"
              },
              "id": {
                "type": "string"
              },
              "occurred_at": {
                "format": "date-time",
                "type": "string"
              },
              "type": {
                "type": "string"
              }
            },
            "type": "object"
          }
        },
        "type": "object"
      },
      "DeliveryPage": {
        "properties": {
          "items": {
            "items": {
              "$ref": "#/components/schemas/Delivery"
            },
            "type": "array"
          },
          "next_cursor": {
            "type": "string"
          }
        },
        "type": "object"
      },
      "Endpoint": {
        "properties": {
          "consecutive_failures": {
            "type": "integer"
          },
          "created_at": {
            "format": "date-time",
            "type": "string"
          },
          "description": {
            "type": "string"
          },
          "disabled_at": {
            "format": "date-time",
            "type": "string"
          },
          "disabled_reason": {
            "type": "string"
          },
          "dpa_confirmed_at": {
            "format": "date-time",
            "type": "string"
          },
          "dpa_confirmed_by": {
            "type": "string"
          },
          "enabled": {
            "type": "boolean"
          },
          "event_types": {
            "items": {
              "type": "string"
            },
            "type": "array"
          },
          "filters": {
            "additionalProperties": {
              "items": {
                "type": "string"
              },
              "type": "array"
            },
            "type": "object"
          },
          "headers": {
            "additionalProperties": {
              "type": "string"
            },
            "type": "object"
          },
          "id": {
            "format": "uuid",
            "type": "string"
          },
          "payload_format": {
            "enum": [
              "raw",
              "envelope"
            ],
            "type": "string"
          },
          "secret": {
            "description": "only on creation",
            "type": "string"
          },
          "updated_at": {
            "format": "date-time",
            "type": "string"
          },
          "url": {
            "type": "string"
          }
        },
        "type": "object"
      },
      "Key": {
        "properties": {
          "created_at": {
            "format": "date-time",
            "type": "string"
          },
          "id": {
            "format": "uuid",
            "type": "string"
          },
          "key": {
            "description": "only in the creation response",
            "type": "string"
          },
          "name": {
            "type": "string"
          },
          "revoked_at": {
            "format": "date-time",
            "type": "string"
          },
          "tenant_id": {
            "format": "uuid",
            "type": "string"
          }
        },
        "type": "object"
      },
      "Problem": {
        "properties": {
          "detail": {
            "type": "string"
          },
          "field": {
            "type": "string"
          },
          "status": {
            "type": "integer"
          },
          "title": {
            "type": "string"
          },
          "type": {
            "type": "string"
          }
        },
        "required": [
          "type",
          "title",
          "status",
          "detail"
        ],
        "type": "object"
      },
      "Readiness": {
        "properties": {
          "checks": {
            "additionalProperties": {
              "type": "boolean"
            },
            "type": "object"
          },
          "status": {
            "type": "string"
          }
        },
        "type": "object"
      },
      "Secret": {
        "properties": {
          "previous_secret_expires_at": {
            "format": "date-time",
            "type": "string"
          },
          "secret": {
            "type": "string"
          }
        },
        "type": "object"
      },
      "Tenant": {
        "properties": {
          "created_at": {
            "format": "date-time",
            "type": "string"
          },
          "id": {
            "format": "uuid",
            "type": "string"
          },
          "name": {
            "type": "string"
          }
        },
        "type": "object"
      }
    },
    "securitySchemes": {
      "operatorToken": {
        "description": "the deployment's operator token",
        "scheme": "bearer",
        "type": "http"
      },
      "tenantKey": {
        "description": "a tenant API key (hk_\u2026)",
        "scheme": "bearer",
        "type": "http"
      }
    }
  },
  "info": {
    "description": "Endpoints, delivery log, resends and test events of a self-hosted webhook platform. Errors are application/problem+json (RFC 9457). Foreign ids answer 404.",
    "title": "Herald management API",
    "version": "1.0.0"
  },
  "openapi": "3.1.0",
  "paths": {
    "/healthz": {
      "get": {
        "operationId": "health",
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            },
            "description": "ok"
          }
        },
        "security": [],
        "summary": "Process is up"
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "responses": {
          "200": {
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            },
            "description": "text exposition format"
          }
        },
        "security": [],
        "summary": "Prometheus metrics"
      }
    },
    "/readyz": {
      "get": {
        "operationId": "ready",
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Readiness"
                }
              }
            },
            "description": "ready"
          },
          "503": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Readiness"
                }
              }
            },
            "description": "not ready"
          }
        },
        "security": [],
        "summary": "Database and broker reachable"
      }
    },
    "/v1/deliveries": {
      "get": {
        "operationId": "listDeliveries",
        "parameters": [
          {
            "in": "query",
            "name": "status",
            "required": false,
            "schema": {
              "enum": [
                "pending",
                "retrying",
                "delivered",
                "failed",
                "skipped"
              ],
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "event_type",
            "required": false,
            "schema": {
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "since",
            "required": false,
            "schema": {
              "format": "date-time",
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "until",
            "required": false,
            "schema": {
              "format": "date-time",
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "cursor",
            "required": false,
            "schema": {
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "limit",
            "required": false,
            "schema": {
              "default": 50,
              "maximum": 200,
              "minimum": 1,
              "type": "integer"
            }
          },
          {
            "in": "query",
            "name": "endpoint_id",
            "required": false,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/DeliveryPage"
                }
              }
            },
            "description": "page"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "The tenant's delivery log, newest first"
      }
    },
    "/v1/deliveries/{id}": {
      "get": {
        "operationId": "getDelivery",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/DeliveryDetail"
                }
              }
            },
            "description": "detail"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "A delivery with its event and every attempt"
      }
    },
    "/v1/deliveries/{id}/retry": {
      "post": {
        "operationId": "retryDelivery",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "responses": {
          "202": {
            "content": {
              "application/json": {
                "schema": {
                  "properties": {
                    "attempt": {
                      "type": "string"
                    },
                    "delivery_id": {
                      "type": "string"
                    }
                  },
                  "type": "object"
                }
              }
            },
            "description": "queued"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          },
          "409": {
            "$ref": "#/components/responses/Problem"
          },
          "503": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Resend now, with a new request id, recorded as manual"
      }
    },
    "/v1/endpoints": {
      "get": {
        "operationId": "listEndpoints",
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "properties": {
                    "items": {
                      "items": {
                        "$ref": "#/components/schemas/Endpoint"
                      },
                      "type": "array"
                    }
                  },
                  "type": "object"
                }
              }
            },
            "description": "endpoints"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "List endpoints"
      },
      "post": {
        "operationId": "createEndpoint",
        "requestBody": {
          "content": {
            "application/json": {
              "schema": {
                "additionalProperties": false,
                "properties": {
                  "description": {
                    "maxLength": 500,
                    "type": "string"
                  },
                  "dpa_confirmed_by": {
                    "description": "confirms the DPA; required before the endpoint can be enabled",
                    "type": "string"
                  },
                  "enabled": {
                    "type": "boolean"
                  },
                  "event_types": {
                    "description": "types, wildcards like invoice.* or *",
                    "items": {
                      "type": "string"
                    },
                    "minItems": 1,
                    "type": "array"
                  },
                  "filters": {
                    "additionalProperties": {
                      "items": {
                        "type": "string"
                      },
                      "type": "array"
                    },
                    "type": "object"
                  },
                  "headers": {
                    "additionalProperties": {
                      "type": "string"
                    },
                    "description": "custom headers; reserved names are refused",
                    "type": "object"
                  },
                  "payload_format": {
                    "enum": [
                      "raw",
                      "envelope"
                    ],
                    "type": "string"
                  },
                  "secret": {
                    "description": "create only; generated (whsec_\u2026) when absent",
                    "minLength": 16,
                    "type": "string"
                  },
                  "url": {
                    "description": "https URL (http only where the deployment allows it); no IP literals, no credentials, no internal names",
                    "maxLength": 2048,
                    "type": "string"
                  }
                },
                "required": [
                  "url",
                  "event_types"
                ],
                "type": "object"
              }
            }
          },
          "required": true
        },
        "responses": {
          "201": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Endpoint"
                }
              }
            },
            "description": "created"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "413": {
            "$ref": "#/components/responses/Problem"
          },
          "422": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Create an endpoint; the response carries its secret"
      }
    },
    "/v1/endpoints/{id}": {
      "delete": {
        "operationId": "deleteEndpoint",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "responses": {
          "204": {
            "description": "deleted"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Delete an endpoint and its delivery log"
      },
      "get": {
        "operationId": "getEndpoint",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Endpoint"
                }
              }
            },
            "description": "endpoint"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Get an endpoint"
      },
      "patch": {
        "operationId": "updateEndpoint",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "content": {
            "application/json": {
              "schema": {
                "additionalProperties": false,
                "properties": {
                  "description": {
                    "maxLength": 500,
                    "type": "string"
                  },
                  "dpa_confirmed_by": {
                    "description": "confirms the DPA; required before the endpoint can be enabled",
                    "type": "string"
                  },
                  "enabled": {
                    "type": "boolean"
                  },
                  "event_types": {
                    "description": "types, wildcards like invoice.* or *",
                    "items": {
                      "type": "string"
                    },
                    "minItems": 1,
                    "type": "array"
                  },
                  "filters": {
                    "additionalProperties": {
                      "items": {
                        "type": "string"
                      },
                      "type": "array"
                    },
                    "type": "object"
                  },
                  "headers": {
                    "additionalProperties": {
                      "type": "string"
                    },
                    "description": "custom headers; reserved names are refused",
                    "type": "object"
                  },
                  "payload_format": {
                    "enum": [
                      "raw",
                      "envelope"
                    ],
                    "type": "string"
                  },
                  "url": {
                    "description": "https URL (http only where the deployment allows it); no IP literals, no credentials, no internal names",
                    "maxLength": 2048,
                    "type": "string"
                  }
                },
                "type": "object"
              }
            }
          },
          "required": true
        },
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Endpoint"
                }
              }
            },
            "description": "endpoint"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          },
          "413": {
            "$ref": "#/components/responses/Problem"
          },
          "422": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Update an endpoint"
      }
    },
    "/v1/endpoints/{id}/activate": {
      "post": {
        "operationId": "activateEndpoint",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "content": {
            "application/json": {
              "schema": {
                "additionalProperties": false,
                "properties": {
                  "replay_skipped": {
                    "default": false,
                    "type": "boolean"
                  }
                },
                "type": "object"
              }
            }
          },
          "required": false
        },
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "properties": {
                    "endpoint": {
                      "$ref": "#/components/schemas/Endpoint"
                    },
                    "replayed": {
                      "type": "integer"
                    }
                  },
                  "type": "object"
                }
              }
            },
            "description": "activated"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          },
          "422": {
            "$ref": "#/components/responses/Problem"
          },
          "503": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Activate after an automatic disable: reset the failure count, optionally replay skipped deliveries"
      }
    },
    "/v1/endpoints/{id}/deliveries": {
      "get": {
        "operationId": "listEndpointDeliveries",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "status",
            "required": false,
            "schema": {
              "enum": [
                "pending",
                "retrying",
                "delivered",
                "failed",
                "skipped"
              ],
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "event_type",
            "required": false,
            "schema": {
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "since",
            "required": false,
            "schema": {
              "format": "date-time",
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "until",
            "required": false,
            "schema": {
              "format": "date-time",
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "cursor",
            "required": false,
            "schema": {
              "type": "string"
            }
          },
          {
            "in": "query",
            "name": "limit",
            "required": false,
            "schema": {
              "default": 50,
              "maximum": 200,
              "minimum": 1,
              "type": "integer"
            }
          }
        ],
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/DeliveryPage"
                }
              }
            },
            "description": "page"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "An endpoint's delivery log, newest first"
      }
    },
    "/v1/endpoints/{id}/disable": {
      "post": {
        "operationId": "disableEndpoint",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Endpoint"
                }
              }
            },
            "description": "endpoint"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Disable; later deliveries are recorded as skipped"
      }
    },
    "/v1/endpoints/{id}/enable": {
      "post": {
        "operationId": "enableEndpoint",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Endpoint"
                }
              }
            },
            "description": "endpoint"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          },
          "422": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Enable (needs the DPA)"
      }
    },
    "/v1/endpoints/{id}/recover": {
      "post": {
        "operationId": "recoverEndpoint",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "content": {
            "application/json": {
              "schema": {
                "additionalProperties": false,
                "properties": {
                  "dry_run": {
                    "default": false,
                    "type": "boolean"
                  },
                  "since": {
                    "format": "date-time",
                    "type": "string"
                  }
                },
                "required": [
                  "since"
                ],
                "type": "object"
              }
            }
          },
          "required": true
        },
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "properties": {
                    "count": {
                      "type": "integer"
                    },
                    "dry_run": {
                      "type": "boolean"
                    },
                    "resent": {
                      "type": "integer"
                    }
                  },
                  "type": "object"
                }
              }
            },
            "description": "recovery"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          },
          "503": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Resend every failed delivery since a time (dry_run counts them)"
      }
    },
    "/v1/endpoints/{id}/rotate-secret": {
      "post": {
        "operationId": "rotateSecret",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "content": {
            "application/json": {
              "schema": {
                "additionalProperties": false,
                "properties": {
                  "grace_seconds": {
                    "default": 86400,
                    "maximum": 604800,
                    "minimum": 0,
                    "type": "integer"
                  }
                },
                "type": "object"
              }
            }
          },
          "required": false
        },
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Secret"
                }
              }
            },
            "description": "new secret"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Rotate the secret; the old one keeps signing during the grace period"
      }
    },
    "/v1/endpoints/{id}/secret": {
      "get": {
        "operationId": "revealSecret",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Secret"
                }
              }
            },
            "description": "secret"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Reveal the signing secret"
      }
    },
    "/v1/endpoints/{id}/test": {
      "post": {
        "operationId": "testEndpoint",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "content": {
            "application/json": {
              "schema": {
                "additionalProperties": false,
                "properties": {
                  "event_type": {
                    "type": "string"
                  }
                },
                "required": [
                  "event_type"
                ],
                "type": "object"
              }
            }
          },
          "required": true
        },
        "responses": {
          "202": {
            "content": {
              "application/json": {
                "schema": {
                  "properties": {
                    "delivery_id": {
                      "format": "uuid",
                      "type": "string"
                    }
                  },
                  "type": "object"
                }
              }
            },
            "description": "queued"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          },
          "409": {
            "$ref": "#/components/responses/Problem"
          },
          "422": {
            "$ref": "#/components/responses/Problem"
          },
          "503": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "Send the catalog sample of an event type through the pipeline"
      }
    },
    "/v1/event-types": {
      "get": {
        "operationId": "listEventTypes",
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "properties": {
                    "items": {
                      "items": {
                        "properties": {
                          "description": {
                            "type": "string"
                          },
                          "sample": {
                            "type": "object"
                          },
                          "type": {
                            "type": "string"
                          }
                        },
                        "type": "object"
                      },
                      "type": "array"
                    }
                  },
                  "type": "object"
                }
              }
            },
            "description": "catalog"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          }
        ],
        "summary": "The event catalog with sample payloads"
      }
    },
    "/v1/events": {
      "post": {
        "operationId": "publishEvent",
        "requestBody": {
          "content": {
            "application/json": {
              "schema": {
                "additionalProperties": false,
                "properties": {
                  "attributes": {
                    "additionalProperties": {
                      "type": "string"
                    },
                    "type": "object"
                  },
                  "data": {
                    "type": "object"
                  },
                  "id": {
                    "maxLength": 200,
                    "type": "string"
                  },
                  "occurred_at": {
                    "format": "date-time",
                    "type": "string"
                  },
                  "tenant_id": {
                    "description": "With the operator token, the tenant the event belongs to (required then); a tenant key publishes for its own tenant and may not name one",
                    "format": "uuid",
                    "type": "string"
                  },
                  "type": {
                    "type": "string"
                  }
                },
                "required": [
                  "type",
                  "data"
                ],
                "type": "object"
              }
            }
          },
          "required": true
        },
        "responses": {
          "202": {
            "content": {
              "application/json": {
                "schema": {
                  "properties": {
                    "id": {
                      "type": "string"
                    }
                  },
                  "type": "object"
                }
              }
            },
            "description": "accepted"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "413": {
            "$ref": "#/components/responses/Problem"
          },
          "422": {
            "$ref": "#/components/responses/Problem"
          },
          "503": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          },
          {
            "operatorToken": []
          }
        ],
        "summary": "Publish an event over HTTP, its data kept byte for byte; answers after the broker confirmed"
      }
    },
    "/v1/keys/{id}": {
      "delete": {
        "operationId": "revokeKey",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "responses": {
          "204": {
            "description": "revoked"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "tenantKey": []
          },
          {
            "operatorToken": []
          }
        ],
        "summary": "Revoke a key: the operator any, a tenant its own"
      }
    },
    "/v1/openapi.json": {
      "get": {
        "operationId": "openapi",
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            },
            "description": "OpenAPI 3.1"
          }
        },
        "security": [],
        "summary": "This document"
      }
    },
    "/v1/tenants": {
      "get": {
        "operationId": "listTenants",
        "responses": {
          "200": {
            "content": {
              "application/json": {
                "schema": {
                  "properties": {
                    "items": {
                      "items": {
                        "$ref": "#/components/schemas/Tenant"
                      },
                      "type": "array"
                    }
                  },
                  "type": "object"
                }
              }
            },
            "description": "tenants"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "summary": "List tenants"
      },
      "post": {
        "operationId": "createTenant",
        "requestBody": {
          "content": {
            "application/json": {
              "schema": {
                "additionalProperties": false,
                "properties": {
                  "name": {
                    "maxLength": 200,
                    "type": "string"
                  }
                },
                "required": [
                  "name"
                ],
                "type": "object"
              }
            }
          },
          "required": true
        },
        "responses": {
          "201": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Tenant"
                }
              }
            },
            "description": "created"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "summary": "Create a tenant"
      }
    },
    "/v1/tenants/{id}/keys": {
      "post": {
        "operationId": "createKey",
        "parameters": [
          {
            "in": "path",
            "name": "id",
            "required": true,
            "schema": {
              "format": "uuid",
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "content": {
            "application/json": {
              "schema": {
                "additionalProperties": false,
                "properties": {
                  "name": {
                    "type": "string"
                  }
                },
                "type": "object"
              }
            }
          },
          "required": false
        },
        "responses": {
          "201": {
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Key"
                }
              }
            },
            "description": "created"
          },
          "400": {
            "$ref": "#/components/responses/Problem"
          },
          "401": {
            "$ref": "#/components/responses/Problem"
          },
          "403": {
            "$ref": "#/components/responses/Problem"
          },
          "404": {
            "$ref": "#/components/responses/Problem"
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "summary": "Issue a tenant API key (shown once)"
      }
    }
  },
  "servers": [
    {
      "url": "http://localhost:8080"
    }
  ]
}
"""#
}
