// GraphiQL, set up for this server. A file of its own rather than an inline script, so that the
// page's Content-Security-Policy can refuse every inline script.
//
// Queries and mutations go over HTTP with the headers typed in the Headers tab.
// Subscriptions go over graphql-transport-ws on the same path; the Authorization header
// from that tab travels in the connection_init payload, which is where the server reads it.
(function () {
  'use strict';

  const httpUrl = new URL('/graphql', location.href).toString();
  const wsUrl = httpUrl.replace(/^http/, 'ws');
  const httpFetcher = GraphiQL.createFetcher({ url: httpUrl });

  // One socket per Authorization value: a new token means a new connection_init.
  let wsClient = null;
  let wsAuth = null;
  function wsFetcherFor(auth) {
    if (!wsClient || auth !== wsAuth) {
      if (wsClient) wsClient.dispose();
      wsAuth = auth;
      wsClient = graphqlWs.createClient({
        url: wsUrl,
        connectionParams: auth ? { Authorization: auth } : {},
      });
    }
    return GraphiQL.createFetcher({ url: httpUrl, wsClient });
  }

  function authorization(headers) {
    for (const [name, value] of Object.entries(headers || {})) {
      if (name.toLowerCase() === 'authorization') return value;
    }
    return null;
  }

  function isSubscription(params, opts) {
    const doc = opts && opts.documentAST;
    if (!doc) return /^\s*subscription\b/.test(params.query || '');
    return doc.definitions.some((d) =>
      d.kind === 'OperationDefinition' && d.operation === 'subscription' &&
      (!params.operationName || (d.name && d.name.value === params.operationName)));
  }

  function fetcher(params, opts) {
    if (isSubscription(params, opts)) {
      return wsFetcherFor(authorization(opts && opts.headers))(params, opts);
    }
    return httpFetcher(params, opts);
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultHeaders: '{\n  "Authorization": "Bearer <accessToken from login>"\n}',
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: true,
    }),
  );
})();
