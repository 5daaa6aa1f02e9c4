// The CRI Berth speaks: runtime.v1 as in k8s.io/cri-api's main line at commit 791729b (2026-07-23),
// i.e. what kubelets 1.33-1.37 send; every v0.32 field number is kept, so older kubelets and crictl
// work too. `npm run proto:check` checks api/runtime/v1/api.proto against both.
export const CRI_API_VERSION =
  'k8s.io/cri-api main@791729b (2026-07-23; Kubernetes 1.33-1.37; v0.32 compatible)';
