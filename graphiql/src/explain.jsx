// The "SQL" panel: the statements each run sent and PostgreSQL's plan for each. The fetcher asks
// for them with the X-Explain header (the service answers it when ALLOW_EXPLAIN is on) and takes
// them out of the answer, so the response pane shows the answer as a client would get it.
import { useState, useSyncExternalStore } from 'react';

const MODES = [
  ['off', 'off'],
  ['on', 'plan'],
  ['analyze', 'plan as it ran (queries)'],
];
const STORAGE_KEY = 'service.graphiql.explain';

function remembered() {
  try {
    return localStorage.getItem(STORAGE_KEY) ?? 'on';
  } catch {
    return 'on'; // storage turned off in this browser
  }
}

const state = {
  mode: remembered(),
  last: null, // { operation, statements: [{ sql, plan }] }
  listeners: new Set(),
};

function publish(last) {
  state.last = last;
  for (const listener of state.listeners) listener();
}

function subscribe(listener) {
  state.listeners.add(listener);
  return () => state.listeners.delete(listener);
}

function takeExplain(answer, operation) {
  const statements = answer?.extensions?.explain;
  if (!statements) return answer;
  publish({ operation, statements });
  const { explain: _, ...extensions } = answer.extensions;
  const rest = { ...answer };
  if (Object.keys(extensions).length) rest.extensions = extensions;
  else delete rest.extensions;
  return rest;
}

function isSubscription(params, options) {
  const name = params.operationName;
  return (options?.documentAST?.definitions ?? []).some(
    (d) =>
      d.kind === 'OperationDefinition' &&
      d.operation === 'subscription' &&
      (!name || d.name?.value === name),
  );
}

async function* eachTaken(answers, operation) {
  for await (const answer of answers) yield takeExplain(answer, operation);
}

export function explainingFetcher(fetcher) {
  return async (params, options) => {
    // GraphiQL's own schema introspection is not the developer's operation; a subscription
    // runs over a WebSocket, where there are no plans
    if (
      state.mode === 'off' ||
      params.operationName === 'IntrospectionQuery' ||
      isSubscription(params, options)
    ) {
      return fetcher(params, options);
    }
    const headers = { ...options?.headers, 'X-Explain': state.mode };
    const answer = await fetcher(params, { ...options, headers });
    // the toolkit's fetcher answers with a stream of parts (incremental delivery), or one
    if (typeof answer?.[Symbol.asyncIterator] === 'function') {
      return eachTaken(answer, params.operationName);
    }
    return takeExplain(answer, params.operationName);
  };
}

// with a read replica, where each statement ran
const DATABASES = { primary: 'primary', replica: 'read replica' };

function ExplainPanel() {
  const last = useSyncExternalStore(subscribe, () => state.last);
  const [mode, setMode] = useState(state.mode);
  const choose = (value) => {
    state.mode = value;
    try {
      localStorage.setItem(STORAGE_KEY, value);
    } catch {
      // not remembered past this page
    }
    setMode(value);
  };
  return (
    <section className="service-explain" aria-label="SQL">
      <div className="graphiql-doc-explorer-title">SQL</div>
      <p>
        Each operation runs as one SQL statement (a mutation: one or more per field). Here are
        those of the last run, with PostgreSQL's plan for each, as your role and claims ran
        them: row-level security shows in the plan.
      </p>
      <fieldset>
        <legend>Explain each run</legend>
        {MODES.map(([value, label]) => (
          <label key={value}>
            <input
              type="radio"
              name="service-explain-mode"
              value={value}
              checked={mode === value}
              onChange={() => choose(value)}
            />{' '}
            {label}
          </label>
        ))}
      </fieldset>
      {last === null ? (
        <p className="service-explain-empty">Run an operation to see its SQL.</p>
      ) : last.statements.length === 0 ? (
        <p className="service-explain-empty">The last run sent no SQL.</p>
      ) : (
        last.statements.map((statement, i) => (
          <div key={i} className="service-explain-statement">
            <h3>
              Statement {last.statements.length > 1 ? i + 1 : ''}
              {statement.database && ` (on the ${DATABASES[statement.database]})`}
            </h3>
            <pre className="service-explain-sql">{statement.sql}</pre>
            <h3>Plan</h3>
            <pre className="service-explain-plan">{statement.plan}</pre>
          </div>
        ))
      )}
    </section>
  );
}

function DatabaseIcon() {
  return (
    <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.5" aria-hidden="true">
      <ellipse cx="12" cy="5" rx="8" ry="3" />
      <path d="M4 5v14c0 1.7 3.6 3 8 3s8-1.3 8-3V5" />
      <path d="M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3" />
    </svg>
  );
}

export const explainPlugin = { title: 'SQL', icon: DatabaseIcon, content: ExplainPanel };
