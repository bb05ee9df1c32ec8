// ESLint for the dashboard's ES modules (web/js, served as they are: no build step).
// `make jslint` runs it; `make test` depends on that. See docs/dashboard.md.

import js from "@eslint/js";
import globals from "globals";

// Every API path lives in web/js/endpoints.js.
const API_PATH_LITERALS = [
  { selector: "Literal[value=/^\\/v1(\\/|$)/]", message: "API paths live in web/js/endpoints.js." },
  { selector: "TemplateElement[value.raw=/^\\/v1(\\/|$)/]", message: "API paths live in web/js/endpoints.js." },
];

export default [
  { ignores: ["web/vendor/**", "node_modules/**", ".venv/**", ".pilot/**", ".aws-sam/**", "layers/build/**"] },
  js.configs.recommended,
  {
    files: ["web/js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      eqeqeq: ["error", "always"],
      "no-var": "error",
      "prefer-const": "error",
      "no-shadow-restricted-names": "error",
      // text stays text (docs/dashboard.md, Security): nothing parses HTML
      "no-restricted-properties": ["error",
        { property: "innerHTML", message: "Build nodes with dom.js h(); text goes in as text." },
        { property: "outerHTML", message: "Build nodes with dom.js h(); text goes in as text." },
        { property: "insertAdjacentHTML", message: "Build nodes with dom.js h(); text goes in as text." },
        { object: "document", property: "write", message: "Build nodes with dom.js h()." },
      ],
      "no-restricted-syntax": ["error", ...API_PATH_LITERALS],
    },
  },
  {
    files: ["web/js/endpoints.js"],
    rules: { "no-restricted-syntax": "off" },
  },
  {
    files: ["eslint.config.js", "scripts/**/*.mjs"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.node } },
  },
];
