// Monaco's base worker (used for every language without a worker of its own).
import 'monaco-editor/esm/vs/editor/editor.worker.js';
