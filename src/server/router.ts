// A small router for the server's HTTP API: a table of exact paths, each with the methods it
// answers and its handler, instead of a chain of ifs. Unknown paths get 404, known paths with a
// wrong method 405 with an Allow header.
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface Route {
  readonly methods: readonly string[];
  readonly handler: Handler;
}

export class Router {
  private readonly routes = new Map<string, Route>();

  /** Answers GET (and HEAD, which Node's http answers without a body) at `path`. */
  get(path: string, handler: Handler): this {
    this.routes.set(path, { methods: ['GET', 'HEAD'], handler });
    return this;
  }

  /** The route for a request, or the status to answer instead. */
  match(method: string | undefined, pathname: string): Route | 404 | 405 {
    const route = this.routes.get(pathname);
    if (!route) return 404;
    return route.methods.includes(method ?? '') ? route : 405;
  }

  allowed(pathname: string): readonly string[] {
    return this.routes.get(pathname)?.methods ?? [];
  }
}
