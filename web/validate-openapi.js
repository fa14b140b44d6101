// Validates an OpenAPI document with a real validator (swagger-parser: the OpenAPI 3.1 JSON
// Schema, then its own checks). Usage: node validate-openapi.js FILE   (exit 1 when invalid)
const SwaggerParser = require("@apidevtools/swagger-parser");

const file = process.argv[2];
SwaggerParser.validate(file)
  .then((api) => {
    console.log(`${file}: valid OpenAPI ${api.openapi}, ${Object.keys(api.paths).length} paths`);
  })
  .catch((err) => {
    console.error(`${file}: ${err.message}`);
    process.exit(1);
  });
