// The worker of the JSON editors (variables, headers, response).
import 'monaco-editor/esm/vs/language/json/json.worker.js';
