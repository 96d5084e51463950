// GraphiQL for the service. Everything it needs (this bundle, its stylesheet, fonts and the Monaco
// workers) is served by the service itself; the page passes a configuration as a JSON data block
// (not a script: the page's CSP allows no inline script), read here.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { GraphiQL, HISTORY_PLUGIN } from 'graphiql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { explainingFetcher, explainPlugin } from './explain.jsx';

import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';
import './page.css';

const CONFIG_ELEMENT_ID = 'graphiql-config';

function readConfig() {
  const element = document.getElementById(CONFIG_ELEMENT_ID);
  if (!element) {
    throw new Error(`#${CONFIG_ELEMENT_ID} is missing from the page`);
  }
  return JSON.parse(element.textContent);
}

const config = readConfig();

// Monaco asks for a worker per language. The service tells us the hashed URL of each one;
// graphiql's own setup (setup-workers/esm.sh) would fetch them from a CDN instead.
globalThis.MonacoEnvironment = {
  getWorker(_workerId, label) {
    const url = config.workers[label] ?? config.workers.editor;
    return new Worker(new URL(url, document.baseURI), { name: label });
  },
};

const endpoint = new URL(config.endpoint, document.baseURI);
// Subscriptions (live queries) go over a WebSocket to the same endpoint; the headers editor's
// Authorization travels in connection_init's payload, where the service reads it.
const subscriptionUrl = new URL(endpoint);
subscriptionUrl.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
const httpFetcher = createGraphiQLFetcher({
  url: endpoint.href,
  subscriptionUrl: subscriptionUrl.href,
});
// With EXPLAIN allowed (ALLOW_EXPLAIN), the SQL panel shows what each run sent to PostgreSQL.
const fetcher = config.explain ? explainingFetcher(httpFetcher) : httpFetcher;

const plugins = [HISTORY_PLUGIN, explorerPlugin(), ...(config.explain ? [explainPlugin] : [])];

function App() {
  return (
    <GraphiQL
      fetcher={fetcher}
      plugins={plugins}
      defaultQuery={config.defaultQuery}
      defaultHeaders={config.defaultHeaders}
      isHeadersEditorEnabled
      shouldPersistHeaders={false}
      defaultEditorToolsVisibility={config.showHeaders ? 'headers' : undefined}
    />
  );
}

createRoot(document.getElementById('graphiql')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
