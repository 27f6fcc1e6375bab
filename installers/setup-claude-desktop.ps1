# Points Claude Desktop on Windows at a MoE Sovereign gateway.
#
#   powershell -ExecutionPolicy Bypass -File installers\setup-claude-desktop.ps1
#
# Asks for the gateway URL and the API key (the key is read as a secure string, not echoed), or
# takes them from $env:MOE_SOVEREIGN_URL / $env:MOE_SOVEREIGN_API_KEY (never from arguments:
# process lists leak them). $env:MOE_SOVEREIGN_YES = "1" answers yes to every confirmation.
#
# Checks GET /v1/models with the key (200 go on, 401 wrong key, no answer: says so). When
# moe-sovereign.exe is on PATH it hands the merge to `moe-sovereign wire claude-desktop`.
# Otherwise it merges the keys itself: a file that does not parse is refused and left alone, a
# timestamped backup is kept next to each changed file, other settings are kept, files are
# replaced atomically, and the key is never printed.
#
# Not run in CI (no PowerShell on the Linux CI machine); the shell version is.
$ErrorActionPreference = 'Stop'

function Fail([string]$message) { [Console]::Error.WriteLine("setup-claude-desktop: $message"); exit 1 }
function Confirm-Step([string]$question) {
    if ($env:MOE_SOVEREIGN_YES -eq '1') { return $true }
    $answer = Read-Host "$question [y/N]"
    return $answer -match '^(y|yes)$'
}

# --- inputs ---------------------------------------------------------------------------------
$url = $env:MOE_SOVEREIGN_URL
if (-not $url) {
    $url = Read-Host 'Gateway URL [http://127.0.0.1:8742]'
    if (-not $url) { $url = 'http://127.0.0.1:8742' }
}
$url = $url.Trim().TrimEnd('/')
if ($url.EndsWith('/v1')) { $url = $url.Substring(0, $url.Length - 3) }
if ($url -notmatch '^https?://.+') { Fail "the URL must start with http:// or https:// (got: $url)" }

$delegate = Get-Command moe-sovereign -ErrorAction SilentlyContinue
$key = $env:MOE_SOVEREIGN_API_KEY
if (-not $key -and $delegate) {
    try { $key = (& $delegate.Source credential 2>$null | Out-String).Trim() } catch { $key = '' }
}
if (-not $key) {
    $secure = Read-Host 'API key (moe-sk-..., not shown)' -AsSecureString
    $key = [Runtime.InteropServices.Marshal]::PtrToStringAuto(
        [Runtime.InteropServices.Marshal]::SecureStringToBSTR($secure))
}
if (-not $key) { Fail 'no key given' }

# --- live check -------------------------------------------------------------------------------
try {
    $response = Invoke-WebRequest -Uri "$url/v1/models" -Headers @{ 'x-api-key' = $key } `
        -UseBasicParsing -TimeoutSec 10
    $status = [int]$response.StatusCode
} catch [System.Net.WebException] {
    if ($_.Exception.Response) { $status = [int]$_.Exception.Response.StatusCode } else { $status = 0 }
} catch {
    if ($_.Exception.Response) { $status = [int]$_.Exception.Response.StatusCode } else { $status = 0 }
}
switch ($status) {
    200 { [Console]::Error.WriteLine("gateway at $url accepts the key") }
    401 { Fail "the gateway at $url refused the key (401): check it with ``moe-sovereign keys list``" }
    0 { Fail "nothing answers at ${url}: start the gateway (moe-sovereign serve) and retry" }
    default { Fail "the gateway at $url answered HTTP $status to GET /v1/models" }
}

# --- merge ------------------------------------------------------------------------------------
if ($delegate) {
    if (-not (Confirm-Step "Wire Claude Desktop to $url?")) { Fail 'nothing changed' }
    & $delegate.Source wire claude-desktop --url $url
    exit $LASTEXITCODE
}

if ($PSVersionTable.PSVersion.Major -lt 7) {
    Fail 'merging without moe-sovereign needs PowerShell 7 (pwsh); install moe-sovereign or run this with pwsh'
}
$appData = $env:APPDATA
$localAppData = $env:LOCALAPPDATA
if (-not $appData -or -not $localAppData) { Fail 'APPDATA/LOCALAPPDATA are not set' }
$profileId = '6d6f652d-736f-4076-8000-000000008742'
$normal = Join-Path $appData 'Claude'
$third = Join-Path $localAppData 'Claude-3p'
$msix = Get-ChildItem -Path (Join-Path $localAppData 'Packages') -Directory -Filter 'Claude_*' -ErrorAction SilentlyContinue |
    Select-Object -First 1
if ($msix) {
    $normal = Join-Path $msix.FullName 'LocalCache\Roaming\Claude'
    $third = Join-Path $msix.FullName 'LocalCache\Roaming\Claude-3p'
}
$paths = [ordered]@{
    seed    = Join-Path $normal 'claude_desktop_config.json'
    third   = Join-Path $third 'claude_desktop_config.json'
    meta    = Join-Path $third 'configLibrary\_meta.json'
    profile = Join-Path $third "configLibrary\$profileId.json"
}
[Console]::Error.WriteLine("Claude Desktop files: $normal, $third")
if (-not (Confirm-Step "Wire Claude Desktop to $url (backups are kept next to each file)?")) { Fail 'nothing changed' }

function Read-Json([string]$path) {
    if (-not (Test-Path -LiteralPath $path)) { return @{ Text = $null; Doc = [ordered]@{} } }
    $text = [IO.File]::ReadAllText($path)
    if (-not $text.Trim()) { return @{ Text = $text; Doc = [ordered]@{} } }
    try {
        $doc = $text | ConvertFrom-Json -AsHashtable
    } catch {
        Fail "${path}: does not parse ($($_.Exception.Message)); the file was left untouched"
    }
    if ($doc -isnot [System.Collections.IDictionary]) { Fail "${path}: the top level is not a JSON object (left untouched)" }
    return @{ Text = $text; Doc = $doc }
}

function Save-Json([string]$path, $before, $doc) {
    $text = ($doc | ConvertTo-Json -Depth 100) + "`n"
    if ($before -eq $text) { return }
    $folder = Split-Path -Parent $path
    New-Item -ItemType Directory -Force -Path $folder | Out-Null
    if ($null -ne $before) {
        $backup = "$path.moe-backup-$((Get-Date).ToUniversalTime().ToString('yyyyMMddTHHmmssZ'))"
        [IO.File]::WriteAllText($backup, $before)
        [Console]::Error.WriteLine("backup: $backup")
    }
    $tmp = Join-Path $folder ".moe-$([Guid]::NewGuid()).tmp"
    [IO.File]::WriteAllText($tmp, $text)
    if (Test-Path -LiteralPath $path) {
        [IO.File]::Replace($tmp, $path, $null)
    } else {
        [IO.File]::Move($tmp, $path)
    }
    [Console]::Error.WriteLine("updated $path")
}

# Parse everything first: one broken file stops the whole setup with nothing changed.
$loaded = [ordered]@{}
foreach ($name in $paths.Keys) { $loaded[$name] = Read-Json $paths[$name] }
$entries = $loaded.meta.Doc['entries']
if ($null -ne $entries -and $entries -isnot [System.Collections.IList]) { Fail "$($paths.meta): entries is not a list (left untouched)" }

$doc = $loaded.seed.Doc
$doc['thirdPartyInference'] = [ordered]@{ type = 'gateway'; baseUrl = $url; apiKey = $key }
$doc['deploymentMode'] = '3p'
Save-Json $paths.seed $loaded.seed.Text $doc

$doc = $loaded.third.Doc
$doc['deploymentMode'] = '3p'
Save-Json $paths.third $loaded.third.Text $doc

$doc = $loaded.profile.Doc
$doc['inferenceProvider'] = 'gateway'
$doc['inferenceGatewayBaseUrl'] = $url
$doc['inferenceGatewayAuthScheme'] = 'bearer'
$doc['inferenceGatewayApiKey'] = $key
$doc['deploymentDisplayName'] = 'MoE Sovereign'
$doc['disableEssentialTelemetry'] = $true
$doc['disableNonessentialTelemetry'] = $true
Save-Json $paths.profile $loaded.profile.Text $doc

$doc = $loaded.meta.Doc
$kept = @($entries | Where-Object { -not ($_ -is [System.Collections.IDictionary] -and $_['id'] -eq $profileId) })
$kept += [ordered]@{ id = $profileId; name = 'MoE Sovereign' }
$doc['appliedId'] = $profileId
$doc['entries'] = $kept
Save-Json $paths.meta $loaded.meta.Text $doc

[Console]::Error.WriteLine("done: quit and reopen Claude Desktop to use $url")
