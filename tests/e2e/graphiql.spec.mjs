// End-to-end test of the service's GraphiQL page in Debian's Chromium, headless, driven by
// playwright-core (installed under graphiql/, no browser download). Every request to a host other
// than the service's is blocked and fails the test.
//
//   GRAPHIQL_E2E_BASE_URL=http://127.0.0.1:8000 node tests/e2e/graphiql.spec.mjs
//
// Environment:
//   GRAPHIQL_E2E_BASE_URL   the running service (required)
//   GRAPHIQL_E2E_ENDPOINT   path of the GraphQL endpoint (default /graphql)
//   GRAPHIQL_E2E_QUERY      the query typed into the editor (one line; default: 5 posts' titles)
//   GRAPHIQL_E2E_EXPECT     text the response must show (default "posts")
//   GRAPHIQL_E2E_TOKEN      when set: put it in the Authorization header with the headers editor
//                           and check that `viewer` changes from null to a user
//   GRAPHIQL_E2E_VIEWER_EXPECT  text the viewer response must show with the token (e.g. the email)
//   GRAPHIQL_E2E_SQL        when 1: open the SQL panel and check it shows the last run's
//                           statement and plan (a service with ALLOW_EXPLAIN on)
//   GRAPHIQL_E2E_ARTIFACTS  folder for the screenshots (default tests/e2e/artifacts)
//   CHROMIUM                the browser (default /usr/bin/chromium)
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// playwright-core lives in graphiql/node_modules (a devDependency there).
const requireFromGraphiql = createRequire(path.join(here, '..', '..', 'graphiql', 'package.json'));
const { chromium } = requireFromGraphiql('playwright-core');

const env = process.env;
if (!env.GRAPHIQL_E2E_BASE_URL) {
  console.error('GRAPHIQL_E2E_BASE_URL is not set (e.g. http://127.0.0.1:8000)');
  process.exit(2);
}
const base = new URL(env.GRAPHIQL_E2E_BASE_URL);
const pageUrl = new URL(env.GRAPHIQL_E2E_ENDPOINT ?? '/graphql', base);
const query = env.GRAPHIQL_E2E_QUERY ?? '{ posts(first: 5) { nodes { id title } } }';
const expected = env.GRAPHIQL_E2E_EXPECT ?? 'posts';
const token = env.GRAPHIQL_E2E_TOKEN;
const explainPanel = env.GRAPHIQL_E2E_SQL === '1';
const viewerExpected = env.GRAPHIQL_E2E_VIEWER_EXPECT;
const artifacts = path.resolve(env.GRAPHIQL_E2E_ARTIFACTS ?? path.join(here, 'artifacts'));
const executablePath = env.CHROMIUM ?? '/usr/bin/chromium';
const TIMEOUT_MS = 30_000;

// Console errors of third-party code that are not failures of ours, each with its reason.
const KNOWN_CONSOLE_ERRORS = [
  // graphiql-explorer 0.9.0 (inside @graphiql/plugin-explorer 5.1.5) cannot display an argument
  // that is a list of input objects, such as the default query's `orderBy: [{createdAt: DESC}]`;
  // it logs this when the explorer opens. The query itself is valid and runs.
  /^arg mismatch between arg and selection /,
];

const problems = [];
const problem = (text) => {
  problems.push(text);
  console.error(`  problem: ${text}`);
};
const step = (text) => console.log(`- ${text}`);

function sameOrigin(url) {
  if (url.startsWith('data:') || url.startsWith('blob:')) return true;
  try {
    const u = new URL(url);
    return u.host === base.host && (u.protocol === base.protocol || u.protocol.startsWith('ws'));
  } catch {
    return false;
  }
}

const editorText = (page, selector) =>
  page.$eval(selector, (el) => el.innerText.replaceAll('\u00a0', ' '));

async function typeQuery(page, text) {
  // Type the query into Monaco as a person would (one line: Enter would take a suggestion).
  await page.click('.graphiql-query-editor .monaco-editor .view-lines');
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(text, { delay: 5 });
  await page.keyboard.press('Escape'); // close the completion list, if open
  // GraphiQL derives the operation name from the editor after a debounce; running at once
  // would send the previous query's name. Pause as a person would.
  await page.waitForTimeout(750);
  const typed = (await editorText(page, '.graphiql-query-editor .view-lines')).replace(/\s+/g, ' ');
  if (typed.trim() !== text.trim()) problem(`query editor shows ${JSON.stringify(typed)}`);
}

async function runQuery(page, text) {
  await typeQuery(page, text);
  const answered = page.waitForResponse(
    (r) => r.url() === pageUrl.href && r.request().method() === 'POST',
    { timeout: TIMEOUT_MS },
  );
  await page.click('.graphiql-execute-button');
  const response = await answered;
  if (response.status() !== 200) {
    const body = (await response.text()).slice(0, 300);
    problem(`POST ${pageUrl.pathname} answered ${response.status()}: ${body}`);
    problem(`  request was ${response.request().postData()}`);
  }
  return response;
}

async function responseShows(page, text) {
  await page.waitForFunction(
    (t) => {
      const el = document.querySelector('.graphiql-response .view-lines');
      return el && el.innerText.replaceAll('\u00a0', ' ').includes(t);
    },
    text,
    { timeout: TIMEOUT_MS },
  );
}

async function main() {
  const started = performance.now();
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      // Belt and braces: no other host even resolves.
      `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${base.hostname}`,
    ],
  });
  let failed = false;
  let page;
  try {
    const context = await browser.newContext({
      serviceWorkers: 'block',
      viewport: { width: 1400, height: 900 },
    });
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (sameOrigin(url)) return route.continue();
      problem(`request to another host blocked: ${url}`);
      return route.abort('blockedbyclient');
    });
    context.on('request', (request) => {
      if (!sameOrigin(request.url())) problem(`request to another host: ${request.url()}`);
    });
    context.on('requestfailed', (request) => {
      problem(`request failed: ${request.url()} (${request.failure()?.errorText})`);
    });
    context.on('response', (response) => {
      if (response.status() >= 400) problem(`${response.status()} for ${response.url()}`);
    });
    const graphqlRequests = [];
    context.on('request', (request) => {
      if (request.url() === pageUrl.href && request.method() === 'POST') graphqlRequests.push(request);
    });

    page = await context.newPage();
    const onConsole = (where) => (msg) => {
      if (msg.type() !== 'error') return;
      if (KNOWN_CONSOLE_ERRORS.some((re) => re.test(msg.text()))) {
        console.log(`  known third-party console error (${where}): ${msg.text()}`);
        return;
      }
      problem(`console error (${where}): ${msg.text()}`);
    };
    page.on('console', onConsole('page'));
    page.on('pageerror', (error) => problem(`page error: ${error.message}`));
    const workers = [];
    page.on('worker', (worker) => {
      workers.push(worker.url());
      worker.on('console', onConsole(`worker ${worker.url()}`));
    });

    step(`open ${pageUrl.href}`);
    const navigation = await page.goto(pageUrl.href, { waitUntil: 'load', timeout: TIMEOUT_MS });
    const headers = navigation.headers();
    if (!(headers['content-type'] ?? '').startsWith('text/html')) {
      problem(`page content-type is ${headers['content-type']}`);
    }
    const csp = headers['content-security-policy'] ?? '';
    if (!/script-src 'self'(;|$)/.test(csp)) problem(`page CSP lacks script-src 'self': ${csp}`);

    step('wait for the editors');
    await page.waitForSelector('.graphiql-query-editor .monaco-editor .view-lines', {
      timeout: TIMEOUT_MS,
    });
    await page.waitForSelector('.graphiql-response .monaco-editor', { timeout: TIMEOUT_MS });
    // The schema arrives by introspection; the explorer and docs need it.
    await page.waitForFunction(
      () => !document.querySelector('.graphiql-spinner'),
      null,
      { timeout: TIMEOUT_MS },
    );

    const initial = await editorText(page, '.graphiql-query-editor .view-lines');
    if (!initial.includes('service token') || !initial.includes('Authorization')) {
      problem(`the default query does not tell how to authenticate: ${initial.slice(0, 200)}`);
    }
    await page.screenshot({ path: path.join(artifacts, 'graphiql-start.png') });

    step('plugins: history and explorer');
    await page.waitForSelector('button[aria-label="Show History"]', { timeout: TIMEOUT_MS });
    await page.click('button[aria-label="Show GraphiQL Explorer"]');
    await page.waitForSelector('.docExplorerWrap :text("posts")', { timeout: TIMEOUT_MS });
    await page.screenshot({ path: path.join(artifacts, 'graphiql-explorer.png') });
    await page.click('button[aria-label="Hide GraphiQL Explorer"]');

    step('run the default query as it is');
    const answered = page.waitForResponse(
      (r) => r.url() === pageUrl.href && r.request().method() === 'POST',
      { timeout: TIMEOUT_MS },
    );
    await page.click('.graphiql-execute-button');
    const defaultResult = await (await answered).json();
    if (defaultResult.errors || !defaultResult.data?.posts) {
      problem(`the default query failed: ${JSON.stringify(defaultResult).slice(0, 300)}`);
    }
    await responseShows(page, '"posts"');

    step(`type and run: ${query}`);
    await runQuery(page, query);
    await responseShows(page, expected);
    // Default headers are empty: no placeholder token goes out (a bad token is a 401).
    for (const request of graphqlRequests) {
      if ((await request.allHeaders()).authorization !== undefined) {
        problem('a request sent an Authorization header before one was set');
      }
    }
    await page.screenshot({ path: path.join(artifacts, 'graphiql.png') });
    step(`response shows ${JSON.stringify(expected)}`);

    if (explainPanel) {
      step('open the SQL panel');
      await page.click('button[aria-label="Show SQL"]');
      await page.waitForSelector('.service-explain-plan', { timeout: TIMEOUT_MS });
      const sql = await page.$eval('.service-explain-sql', (el) => el.textContent);
      const plan = await page.$eval('.service-explain-plan', (el) => el.textContent);
      if (!sql.startsWith('SELECT')) problem(`the SQL panel shows ${sql.slice(0, 200)}`);
      if (!/Scan .*on posts/.test(plan)) problem(`the SQL panel's plan: ${plan.slice(0, 300)}`);
      const answer = await editorText(page, '.graphiql-response .view-lines');
      if (answer.includes('"explain"')) problem('the response pane shows the plans as well');
      await page.screenshot({ path: path.join(artifacts, 'graphiql-sql.png') });
      await page.click('button[aria-label="Hide SQL"]');
      step('the SQL panel shows the statement and its plan');
    }

    if (token) {
      const viewerQuery = '{ viewer { id email } }';
      step('viewer without a token');
      await runQuery(page, viewerQuery);
      await responseShows(page, '"viewer": null');
      step('set Authorization in the headers editor');
      await page.click('.graphiql-editor-tools button:has-text("Headers")');
      // Both the variables and the headers editor exist; only the chosen one is visible.
      await page.click('.graphiql-editor-tool .monaco-editor .view-lines:visible');
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.press('Delete');
      // insertText: Monaco would auto-close the brace and quotes of typed JSON.
      await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${token}` }));
      const sent = runQuery(page, viewerQuery);
      const request = (await sent).request();
      if ((await request.allHeaders()).authorization !== `Bearer ${token}`) {
        problem('the Authorization header from the headers editor was not sent');
      }
      await responseShows(page, viewerExpected ?? '"email"');
      await page.screenshot({ path: path.join(artifacts, 'graphiql-viewer.png') });
      step(`with the token, viewer shows ${JSON.stringify(viewerExpected ?? '"email"')}`);

      // A live query over WebSocket, authorized by the same headers: the token's user sees
      // their own unpublished post appear, which nobody else could.
      const subscription = 'subscription { posts(filter: {title: {eq: "Live draft"}}) { totalCount } }';
      const socketOpened = page.waitForEvent('websocket', { timeout: TIMEOUT_MS });
      await typeQuery(page, subscription);
      await page.click('.graphiql-execute-button');
      const socket = await socketOpened;
      if (!socket.url().startsWith(pageUrl.href.replace(/^http/, 'ws'))) {
        problem(`the subscription opened ${socket.url()}`);
      }
      await responseShows(page, '"totalCount": 0');
      step('subscription over WebSocket shows totalCount 0');
      const created = await fetch(pageUrl.href, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({
          query: 'mutation { createPost(input: {title: "Live draft", content: "-"}) { id } }',
        }),
      });
      if (created.status !== 200) problem(`createPost answered ${created.status}`);
      await responseShows(page, '"totalCount": 1');
      await page.screenshot({ path: path.join(artifacts, 'graphiql-subscription.png') });
      step('a post created meanwhile: the live answer shows totalCount 1');
    }
    // Monaco's workers come from the service (graphiql's default would fetch them from a CDN).
    if (!workers.some((url) => url.includes('worker-graphql-'))) {
      problem(`the GraphQL worker did not start; workers: ${JSON.stringify(workers)}`);
    }
    await context.close();
  } catch (error) {
    failed = true;
    console.error(error);
    await page
      ?.screenshot({ path: path.join(artifacts, 'graphiql-failure.png') })
      .then(() => console.error(`screenshot: ${path.join(artifacts, 'graphiql-failure.png')}`))
      .catch(() => {});
  } finally {
    await browser.close();
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (failed || problems.length) {
    console.error(`graphiql e2e: FAILED (${problems.length} problems, ${seconds} s)`);
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  console.log(`graphiql e2e: ok (${seconds} s; screenshots in ${artifacts})`);
}

await main();
