-- Argo CD health of a lathe.dev/v1alpha1 Dataset, from the conditions Lathe's operator sets.
-- Runs as an argocd-cm custom check: standard libraries off, so only base Lua (no string.*).
-- A failed ingest or validation is Degraded even while an older version stays current:
-- the spec in Git asked for data that was refused. docs/argocd.md has the whole table.
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

local current = ""
if obj.status.currentVersion ~= nil then
  current = " (version " .. obj.status.currentVersion .. " stays current)"
end
if ready.status ~= "True" then
  if holds(degraded) or not holds(progressing) then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = says(ready) .. current
elseif holds(degraded) then
  hs.status = "Degraded"
  hs.message = says(ready)
elseif holds(progressing) then
  hs.status = "Progressing"
  hs.message = says(ready) .. current
else
  hs.status = "Healthy"
  hs.message = says(ready)
end
return hs
