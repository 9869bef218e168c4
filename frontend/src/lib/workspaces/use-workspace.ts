"use client";

import { useCallback, useEffect, useState } from "react";
import { workspacesFor, type MyWorkspace } from "../api/workspaces";
import { getServices } from "../services";

export type WorkspaceLoad =
  | { status: "loading"; workspace: null; error: null }
  | { status: "ready"; workspace: MyWorkspace; error: null }
  | { status: "error"; workspace: null; error: unknown };

/**
 * `GET /workspaces/{id}`: the name and the caller's role. `set` applies a
 * newer copy (e.g. from a `workspace.updated` event); `reload` asks again.
 */
export function useWorkspace(id: string) {
  const [state, setState] = useState<{ id: string; load: WorkspaceLoad }>({
    id,
    load: { status: "loading", workspace: null, error: null },
  });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    workspacesFor(getServices().api)
      .get(id, { signal: controller.signal })
      .then((workspace) => setState({ id, load: { status: "ready", workspace, error: null } }))
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setState({ id, load: { status: "error", workspace: null, error } });
      });
    return () => controller.abort();
  }, [id, attempt]);

  const reload = useCallback(() => setAttempt((n) => n + 1), []);
  const set = useCallback(
    (patch: Partial<MyWorkspace>) =>
      setState((prev) =>
        prev.id === id && prev.load.status === "ready" ? { id, load: { ...prev.load, workspace: { ...prev.load.workspace, ...patch } } } : prev,
      ),
    [id],
  );

  const load: WorkspaceLoad = state.id === id ? state.load : { status: "loading", workspace: null, error: null };
  return { ...load, reload, set };
}
