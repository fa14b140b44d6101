// Swagger UI for this server's own document; "Try it out" calls the same server (the document's
// server is "/"), and "Authorize" takes a bearer token (kept across reloads).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  tryItOutEnabled: false,
  validatorUrl: null,
});
