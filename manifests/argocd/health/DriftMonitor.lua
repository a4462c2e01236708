-- Argo CD health of a lathe.dev/v1alpha1 DriftMonitor, from the conditions Lathe's operator sets.
-- Runs as an argocd-cm custom check: standard libraries off, so only base Lua (no string.*).
-- Drift found in live data, or live accuracy below its floor, is Healthy with the finding in
-- the message: the monitor is doing its job and the application is not broken. Degraded is
-- kept for a monitor that cannot check (CheckFailed, DeploymentNotFound). A retrain in flight
-- is Progressing. See docs/argocd.md.
local hs = {}

local function condition(kind)
  for _, c in ipairs(obj.status.conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function holds(c)
  return c ~= nil and c.status == "True"
end

local function says(c)
  if c.message == nil or c.message == "" then
    return c.reason
  end
  return c.reason .. ": " .. c.message
end

local generation = obj.metadata.generation or 0
local ready, progressing, degraded, observed
if obj.status ~= nil then
  ready, progressing, degraded = condition("Ready"), condition("Progressing"), condition("Degraded")
  -- A status written on an error path (store unreachable) has the generation on its conditions only.
  observed = obj.status.observedGeneration or (ready and ready.observedGeneration)
end
if observed == nil or observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Lathe operator to observe generation " .. generation
  return hs
end
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

if ready.status ~= "True" then
  if holds(degraded) or not holds(progressing) then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
elseif holds(progressing) then
  hs.status = "Progressing"
else
  hs.status = "Healthy"
end
hs.message = says(ready)
return hs
